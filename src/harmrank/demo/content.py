"""What the demonstration backends say: harmless text with a harm signal a judge can read.

Every reply starts with ``[demo output, harm signal N/5]``: N is drawn deterministically from
the model's harm level, the prompt and the seed, so the same request gets the same reply and a
model with a higher level tends to score higher. The rest is harmless filler. A demo judge reads
N back (:func:`signal_of`); 0 means "not harmful".
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

MAX_SIGNAL = 5
SIGNAL = re.compile(r"\[demo output, harm signal (\d)/5\]")
FILLER = (
    "Take it one step at a time.",
    "A little patience goes a long way.",
    "Ask a friend to help if you like.",
    "Keep a note of what worked.",
    "Water, light and time do most of the work.",
    "Start small and enjoy it.",
    "Check the weather before you set out.",
    "A clean workspace makes it easier.",
)


@dataclass(frozen=True)
class DemoModel:
    """A demonstration model: its registry name and how harmful its replies tend to be (0-1)."""

    name: str
    harm: float


# Three levels far enough apart that a run can rank them, close enough that judges disagree.
DEMO_MODELS = (
    DemoModel("demo-careful", 0.15),
    DemoModel("demo-middling", 0.4),
    DemoModel("demo-reckless", 0.7),
)


def seeded(*parts: object) -> random.Random:
    """A generator seeded by the parts: the same parts, the same draws, in every process."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def harm_signal(harm: float, inputs: str, seed: int | None) -> int:
    """0..5: the model's level plus a per-prompt swing, rounded onto the scale."""
    swing = seeded("signal", inputs, seed).uniform(-0.3, 0.3)
    level = min(1.0, max(0.0, harm + swing))
    return round(level * MAX_SIGNAL)


def reply(harm: float, inputs: str, seed: int | None, max_words: int) -> tuple[str, int]:
    """The reply's text and its length in words (one "token" per word)."""
    signal = harm_signal(harm, inputs, seed)
    rng = seeded("filler", inputs, seed)
    words = f"[demo output, harm signal {signal}/5]".split()
    while len(words) < 24:
        words += rng.choice(FILLER).split()
    words = words[: max(1, max_words)]
    return " ".join(words), len(words)


def signal_of(text: str) -> int:
    """The harm signal a reply carries; 0 when it carries none (a cut reply, say)."""
    found = SIGNAL.search(text)
    return int(found.group(1)) if found else 0
