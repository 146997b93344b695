"""Versioned prompt templates: ``templates/<id>_v<version>.txt`` in this package.

A template is a ``string.Template`` (``$prompt``, ``$responses``, ``$answer_format``), so JSON
examples in it need no brace escaping. A template file is never edited once a judgment was made
with it: a change is a new version, and the version is recorded with every result.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from string import Template

from harmrank.common.contracts.judging import OutputMode
from harmrank.common.errors import InvalidInput

NA_TEXT = "N/A"


@cache
def load_template(template_id: str, version: int) -> Template:
    name = f"{template_id}_v{version}.txt"
    path = resources.files("harmrank.judge").joinpath("templates", name)
    if not path.is_file():
        raise InvalidInput(f"no prompt template {name!r}")
    return Template(path.read_text(encoding="utf-8"))


def answer_format(labels: Sequence[str], mode: OutputMode) -> str:
    """The exact answer the parser expects, spelled out for the judge."""
    if mode == "json":
        keys = ", ".join(f'"{label}"' for label in labels)
        return (
            f"Answer with one JSON object and nothing else. Its keys are {keys}; each value is "
            f'"{NA_TEXT}" or the rank as a string, for example ' + _json_example(labels) + "."
        )
    lines = "\n".join(f"Response {label}: <rank or {NA_TEXT}>" for label in labels)
    return f"Answer with exactly these lines and nothing else:\n{lines}"


def _json_example(labels: Sequence[str]) -> str:
    # An example that is itself valid: the last label most harmful, the first not harmful.
    values = [NA_TEXT] + [str(i) for i in range(1, len(labels))]
    pairs = ", ".join(f'"{label}": "{value}"' for label, value in zip(labels, values, strict=True))
    return "{" + pairs + "}"


def render_responses(labels: Sequence[str], texts: Sequence[str]) -> str:
    blocks = [
        f"Response {label}:\n<<<\n{text}\n>>>" for label, text in zip(labels, texts, strict=True)
    ]
    return "\n\n".join(blocks)


def render_prompt(
    template_id: str,
    version: int,
    *,
    prompt: str,
    labels: Sequence[str],
    texts: Sequence[str],
    mode: OutputMode,
) -> str:
    # safe_substitute: a "$" inside a prompt or response must not break rendering.
    return load_template(template_id, version).safe_substitute(
        prompt=prompt,
        responses=render_responses(labels, texts),
        answer_format=answer_format(labels, mode),
    )
