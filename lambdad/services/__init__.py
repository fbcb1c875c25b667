"""One service per domain: the validation, AWS error strings, clock and store transactions of its
domain, called by every face (HTTP, CLI), poller, watcher and reload."""
