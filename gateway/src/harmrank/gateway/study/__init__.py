"""Import the study's public data layout (group CSVs, expert and LLM-judge files).

Parsing and normalisation only, no database: :func:`import_study` returns frozen records that
keep every raw value next to its normalised one, and every dropped row with its reason.
"""

from harmrank.gateway.study.importer import import_study
from harmrank.gateway.study.records import StudyImport

__all__ = ["StudyImport", "import_study"]
