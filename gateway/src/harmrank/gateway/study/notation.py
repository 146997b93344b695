"""Parse the study's ranking notations (``1,2,3``, ``"3,2,1"``, ``[3, 2, N/A]``, ``NA``...).

A ranking string lists one rank per model in canonical model order (Mistral, MPT, StableLM);
``N/A`` (read as 0) means "not harmful". The parser only reads the notation: whether the ranks
follow the convention (restarted, no ties) is the importer's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harmrank.metrics.rankings import NA

N_MODELS = 3

# N/A, NA, n/a and the one-off typo "N/aA" (group 5): an N followed by one or more As.
_NA_TOKEN = re.compile(r"n\s*/?\s*a+", re.IGNORECASE)
_INT_TOKEN = re.compile(r"\d+")
_CANONICAL_NA = "N/A"
_WRAPPERS = (('"', '"'), ("'", "'"), ("[", "]"))
_WRAPPER_KIND = {'"': "quotes", "'": "quotes", "[": "brackets"}


@dataclass(frozen=True)
class ParsedRanking:
    """One ranking string as read: the raw text, its ranks (0 = N/A) and what was cleaned up.

    ``reason`` is a stable code for an unreadable string (``empty_ranking``, ``unparseable``,
    ``wrong_length``); ``problem`` says the same for people. Both are None when readable.
    """

    raw: str
    ranks: tuple[int, ...]
    cleanups: tuple[str, ...] = ()
    reason: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def text(self) -> str:
        """The ranks in the canonical notation (``3,2,N/A``)."""
        return format_ranks(self.ranks)


def format_ranks(ranks: tuple[int, ...]) -> str:
    return ",".join(_CANONICAL_NA if r == NA else str(r) for r in ranks)


def parse_ranking(raw: str, n_models: int = N_MODELS) -> ParsedRanking:
    """Read ``raw`` into ranks, noting each notation cleanup; never raises."""
    body, cleanups = _unwrap(raw)
    if not body:
        return ParsedRanking(raw, (), tuple(cleanups), "empty_ranking", "the ranking is empty")
    tokens = body.split(",")
    if len(tokens) > 1 and not tokens[-1].strip():
        tokens.pop()
        cleanups.append("trailing_comma")
    if any(t != t.strip() for t in tokens):
        cleanups.append("spaces")
    return _read_tokens(raw, [t.strip() for t in tokens], n_models, cleanups)


def _unwrap(raw: str) -> tuple[str, list[str]]:
    """Peel surrounding spaces, quotes and brackets, in any nesting, noting which were there."""
    cleanups: list[str] = []
    body = raw
    while True:
        stripped = body.strip()
        if stripped != body:
            cleanups.append("spaces")
        body = stripped
        wrapper = next((w for w in _WRAPPERS if _wrapped(body, w)), None)
        if wrapper is None:
            return body, _dedupe(cleanups)
        cleanups.append(_WRAPPER_KIND[wrapper[0]])
        body = body[1:-1]


def _wrapped(body: str, wrapper: tuple[str, str]) -> bool:
    return len(body) >= 2 and body.startswith(wrapper[0]) and body.endswith(wrapper[1])


def _read_tokens(raw: str, tokens: list[str], n_models: int, cleanups: list[str]) -> ParsedRanking:
    ranks: list[int] = []
    for token in tokens:
        rank = _read_token(token, cleanups)
        if rank is None:
            problem = f"cannot read {token!r} as a rank or N/A"
            return ParsedRanking(raw, (), tuple(_dedupe(cleanups)), "unparseable", problem)
        ranks.append(rank)
    found = tuple(_dedupe(cleanups))
    if len(ranks) != n_models:
        problem = f"expected {n_models} ranks, got {len(ranks)}"
        return ParsedRanking(raw, tuple(ranks), found, "wrong_length", problem)
    return ParsedRanking(raw, tuple(ranks), found)


def _read_token(token: str, cleanups: list[str]) -> int | None:
    if _INT_TOKEN.fullmatch(token):
        return int(token)
    if _NA_TOKEN.fullmatch(token):
        if token != _CANONICAL_NA:
            cleanups.append("na_spelling")
        return NA
    return None


def _dedupe(kinds: list[str]) -> list[str]:
    return list(dict.fromkeys(kinds))


# A judge's raw answer, one line per response: "Content A: 3", "Content C: N/A".
_ANSWER = re.compile(r"Content\s+([A-Z])\s*:\s*(N/?A|\d+)", re.IGNORECASE)


def raw_answer_tied(raw_output: str | None) -> bool:
    """Whether a judge's raw answer gives two responses the same harmful rank."""
    ranks = [v for _, v in _ANSWER.findall(raw_output or "") if v.isdigit()]
    return len(set(ranks)) != len(ranks)
