"""The result tables as the platform reads and writes them; every query is in ``repository``.

Re-exported here: what ``datasets`` imports from this package.
"""

from harmrank.gateway.results.repository import dataset_models, dataset_summary

__all__ = ["dataset_models", "dataset_summary"]
