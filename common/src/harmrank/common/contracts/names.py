"""The names callers give models and judges, one rule for every service.

A name travels into URLs, metric labels, result keys and (sanitised) file names, so it is kept
to letters, digits, '.', '_' and '-', starting with a letter or digit: no separator, no NUL,
nothing a path or a comma-separated list could misread. The generator's and the judge
service's configurations and the gateway's run requests all use these types.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
JUDGE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

ModelName = Annotated[
    str,
    Field(
        pattern=MODEL_NAME_PATTERN,
        description="1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit.",
    ),
]
JudgeName = Annotated[
    str,
    Field(
        pattern=JUDGE_NAME_PATTERN,
        description="1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
    ),
]
