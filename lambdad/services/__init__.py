"""One service per domain: the validation, AWS errors, clock, transactions and wake-ups that every
face (HTTP API, CLI) and every poller of that domain shares."""
