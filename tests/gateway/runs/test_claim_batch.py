"""The worker's claim batch when none is set: a quarter of its slots, at least 16."""

from __future__ import annotations

import pytest

from harmrank.gateway.runs.worker import default_claim_batch


@pytest.mark.parametrize(
    ("concurrency", "batch"), [(1, 16), (4, 16), (16, 16), (64, 16), (68, 17), (128, 32), (256, 64)]
)
def test_a_quarter_of_the_slots_at_least_sixteen(concurrency: int, batch: int) -> None:
    assert default_claim_batch(concurrency) == batch
