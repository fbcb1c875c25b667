"""EventBridge schedules: expressions, APScheduler triggers, firing."""
