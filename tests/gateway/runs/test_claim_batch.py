"""The worker's claim batch when none is set: a quarter of its slots, at least 8."""

from __future__ import annotations

import pytest

from harmrank.gateway.runs.worker import default_claim_batch


@pytest.mark.parametrize(
    ("concurrency", "batch"), [(1, 8), (4, 8), (16, 8), (32, 8), (36, 9), (64, 16), (256, 64)]
)
def test_a_quarter_of_the_slots_at_least_eight(concurrency: int, batch: int) -> None:
    assert default_claim_batch(concurrency) == batch
