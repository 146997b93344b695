"""The parse of an uploaded file (prompts or rankings): its records and its validation report,
each problem with its file, line and field, capped in memory and in answers but always counted."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from typing import Any, Generic, Literal, TypeVar

Format = Literal["csv", "jsonl"]
R = TypeVar("R")

KEPT_PROBLEMS = 1000
"""Problems of each severity kept in memory; the rest are only counted (a file of a million bad
lines must not cost a million records, nor a 187 MB answer)."""
LISTED_PROBLEMS = 100
"""Problems listed in an answer, the first by line; the total is always stated."""
SENT_CHUNK = 5_000
"""Records a chunk when a parse is sent back from its worker process (see ``Parsed``)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file; ``line`` is 1-based, ``field`` "" when it is the whole line."""

    file: str
    line: int
    field: str
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Parsed(Generic[R]):
    """A file's records (prompts or rankings, as frozen dataclasses) and its problems."""

    file: str
    format: Format
    records: tuple[R, ...]
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    error_total: int = 0
    warning_total: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent from the parsing process to the gateway, where a thread unpickles it: a pickle
        # of a million dataclasses is one C call of seconds that holds the GIL the event loop
        # waits for. Chunks of plain tuples, each loaded in milliseconds and rebuilt by Python
        # code, let the GIL go to the event loop between them.
        kind = type(self.records[0]) if self.records else None
        chunks = _pickled_chunks(self.records)
        report = (self.errors, self.warnings, self.error_total, self.warning_total)
        return (_received, (self.file, self.format, kind, chunks, *report))


def _pickled_chunks(records: Sequence[Any]) -> tuple[bytes, ...]:
    """Dataclass records as pickles of ``SENT_CHUNK`` plain tuples each."""
    if not records:
        return ()
    values = attrgetter(*(f.name for f in fields(records[0])))
    return tuple(
        pickle.dumps([values(r) for r in records[i : i + SENT_CHUNK]], pickle.HIGHEST_PROTOCOL)
        for i in range(0, len(records), SENT_CHUNK)
    )


def _received(
    file: str,
    fmt: Format,
    kind: type[R] | None,
    chunks: tuple[bytes, ...],
    errors: tuple[Problem, ...],
    warnings: tuple[Problem, ...],
    error_total: int,
    warning_total: int,
) -> Parsed[R]:
    """A ``Parsed`` from what its ``__reduce__`` sent (from our own worker process, never from
    elsewhere): one chunk loaded at a time."""
    records: list[R] = []
    for chunk in chunks:
        assert kind is not None  # None only when there are no records, so no chunks
        records.extend(kind(*values) for values in pickle.loads(chunk))
    return Parsed(file, fmt, tuple(records), errors, warnings, error_total, warning_total)


@dataclass
class Collector:
    """Problems found so far, split by severity: the first ``KEPT_PROBLEMS`` of each kept, all
    counted."""

    file: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    error_total: int = 0
    warning_total: int = 0

    def error(self, line: int, name: str, problem: str) -> None:
        self.error_total += 1
        if len(self.errors) < KEPT_PROBLEMS:
            self.errors.append(Problem(self.file, line, name, problem))

    def warn(self, line: int, name: str, problem: str) -> None:
        self.warning_total += 1
        if len(self.warnings) < KEPT_PROBLEMS:
            self.warnings.append(Problem(self.file, line, name, problem))

    def absorb(self, other: Parsed[Any]) -> None:
        """Take over the problems of a parse (an upload's or a rankings file's)."""
        room = KEPT_PROBLEMS - len(self.errors)
        self.errors.extend(other.errors[: max(room, 0)])
        self.warnings.extend(other.warnings[: max(KEPT_PROBLEMS - len(self.warnings), 0)])
        self.error_total += other.error_total
        self.warning_total += other.warning_total


def listed(problems: tuple[Problem, ...] | list[Problem]) -> list[Problem]:
    """The problems to show: the first ``LISTED_PROBLEMS`` by line."""
    return sorted(problems, key=lambda p: p.line)[:LISTED_PROBLEMS]


def counted(total: int) -> str:
    """ "N problem(s)", saying when only some are listed."""
    more = f", the first {LISTED_PROBLEMS} by line listed" if total > LISTED_PROBLEMS else ""
    return f"{total} problem(s){more}"
