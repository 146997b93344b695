"""The validation report of an uploaded file (prompts or rankings): each problem with its file,
line and field, capped in memory and in answers but always counted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

KEPT_PROBLEMS = 1000
"""Problems of each severity kept in memory; the rest are only counted (a file of a million bad
lines must not cost a million records, nor a 187 MB answer)."""
LISTED_PROBLEMS = 100
"""Problems listed in an answer, the first by line; the total is always stated."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file; ``line`` is 1-based, ``field`` "" when it is the whole line."""

    file: str
    line: int
    field: str
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Parsed(Protocol):
    """What a parse reports (a dataset upload's or a rankings file's)."""

    @property
    def errors(self) -> Sequence[Problem]: ...
    @property
    def warnings(self) -> Sequence[Problem]: ...
    @property
    def error_total(self) -> int: ...
    @property
    def warning_total(self) -> int: ...


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

    def absorb(self, other: Parsed) -> None:
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
