"""The gateway's result database: tables, engines and migrations."""

from harmrank.gateway.db.base import Base
from harmrank.gateway.db.engine import create_engine, database_url_from_env, session_factory
from harmrank.gateway.db.models import (
    STUDY_GENERATION_KEY,
    Annotator,
    AnnotatorKind,
    Dataset,
    Exclusion,
    Model,
    Prompt,
    Ranking,
    Response,
)

__all__ = [
    "STUDY_GENERATION_KEY",
    "Annotator",
    "AnnotatorKind",
    "Base",
    "Dataset",
    "Exclusion",
    "Model",
    "Prompt",
    "Ranking",
    "Response",
    "create_engine",
    "database_url_from_env",
    "session_factory",
]
