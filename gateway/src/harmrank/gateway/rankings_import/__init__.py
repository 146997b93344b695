"""Import human rankings of a dataset's responses, in the study's CSV layout or JSONL."""

from harmrank.gateway.rankings_import.api import router

__all__ = ["router"]
