"""Services: one per domain, each owning its validation, clock, store transactions and wake-ups."""
