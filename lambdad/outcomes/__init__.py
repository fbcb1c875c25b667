"""What happens after an invocation: pure retry decisions per source, the one backoff, the one
deliverer of destination records and dead letters, and the outbox that writes their files."""
