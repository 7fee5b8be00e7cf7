"""Named crash points for the reliability harness: die like SIGKILL at an exact moment.

`crashpoint("sync.after_page_fetched")` does nothing unless the environment variable
`CALSYNC_CRASH_AT` names that point (`name`, or `name:N` to die on its N-th hit in this
process); then the process ends at once with `os._exit(137)`: no finally blocks, no
commits, no flushing, exactly what a kill -9 leaves behind. Production never sets it.

The points (where a crash is most likely to lose or duplicate work):

    sync.after_page_fetched            a page of changes is in memory, nothing written
    sync.after_rows_before_cursor      rows and cursor written, transaction not committed
    write.after_create_before_record   the provider created the event, its id not stored
    push.mid_renewal                   the new channel is open, the old one not stopped/recorded
"""

from __future__ import annotations

import os
import sys
from collections import Counter

ENV = "CALSYNC_CRASH_AT"
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL

POINTS = (
    "sync.after_page_fetched",
    "sync.after_rows_before_cursor",
    "write.after_create_before_record",
    "push.mid_renewal",
)

_hits: Counter[str] = Counter()


def parse(value: str) -> tuple[str, int]:
    """`name` or `name:N` → (name, N); N defaults to 1 and must be positive."""
    name, _, nth = value.strip().partition(":")
    count = int(nth) if nth else 1
    if count < 1:
        raise ValueError(f"{ENV}: the hit number must be at least 1, got {count}")
    return name, count


def crashpoint(name: str) -> None:
    """Exit the process immediately if `CALSYNC_CRASH_AT` names this point (and hit count)."""
    value = os.environ.get(ENV)
    if not value:
        return
    target, nth = parse(value)
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] == nth:
        # One line on stderr so a harness can tell a planned death from a real crash.
        sys.stderr.write(f"crashpoint.fired name={name} hit={nth}\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
