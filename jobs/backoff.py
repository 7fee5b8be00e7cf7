"""Pure backoff: how long to wait after the n-th consecutive failure (full jitter)."""

from __future__ import annotations

import random


def next_attempt(failures: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait: uniform in [0, min(cap, base * 2**(failures-1))] ("full jitter").

    Full jitter spreads retries of many failing links or entries over the whole interval, so
    an outage ending does not bring them all back at the same instant.
    """
    if failures <= 0:
        return 0.0
    ceiling = min(cap, base * 2 ** min(failures - 1, 62))
    return (rng or random).uniform(0, ceiling)
