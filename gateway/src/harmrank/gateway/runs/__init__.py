"""Runs as job records: planning, the task queue, workers and the runs API."""

from harmrank.gateway.runs.api import router

__all__ = ["router"]
