"""Runs as job records: planning, the task queue, workers and the runs API."""
