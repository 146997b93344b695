"""Datasets of prompts: upload with a validation report, views, and result pages and exports."""

from harmrank.gateway.datasets.api import router

__all__ = ["router"]
