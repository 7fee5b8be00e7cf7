"""The backoff never exceeds its cap, grows with failures, and is jittered."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from jobs.backoff import next_attempt


@given(st.integers(min_value=0, max_value=10_000), st.floats(0.01, 10), st.floats(10, 3600))
def test_delay_within_zero_and_cap(failures: int, base: float, cap: float) -> None:
    delay = next_attempt(failures, base=base, cap=cap, rng=random.Random(failures))
    assert 0 <= delay <= cap
    if failures == 0:
        assert delay == 0


def test_ceiling_doubles_until_the_cap() -> None:
    rng = random.Random(1)
    samples = [max(next_attempt(n, base=1, cap=60, rng=rng) for _ in range(300)) for n in (1, 3, 10)]
    assert samples[0] <= 1 and 2 < samples[1] <= 4 and 30 < samples[2] <= 60
