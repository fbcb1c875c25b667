"""What starts an invocation on its own: bucket folders, schedules, and the event source mappings
that poll queues and streams. Each turns what it sees into calls on the services."""
