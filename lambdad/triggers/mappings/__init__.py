"""Event source mappings: pollers that invoke functions with batches (SQS-style queues)."""
