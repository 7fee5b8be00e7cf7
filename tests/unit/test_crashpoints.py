"""Crash points: a no-op unless CALSYNC_CRASH_AT names them; then exit 137 on the N-th hit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.crashpoints import EXIT_CODE, POINTS, crashpoint, parse

SCRIPT = """
from worker.crashpoints import crashpoint
for i in range(3):
    crashpoint("sync.after_page_fetched")
    print(i, flush=True)
"""


def _run(crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CALSYNC_CRASH_AT"}
    if crash_at is not None:
        env["CALSYNC_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=30)


def test_unset_is_a_no_op() -> None:
    done = _run(None)
    assert done.returncode == 0 and done.stdout.split() == ["0", "1", "2"]


def test_other_point_named_is_a_no_op() -> None:
    assert _run("write.after_create_before_record").returncode == 0


NTH = [("sync.after_page_fetched", []), ("sync.after_page_fetched:2", ["0"])]


@pytest.mark.parametrize(("crash_at", "printed"), NTH)
def test_named_point_exits_like_sigkill_on_the_nth_hit(crash_at: str, printed: list[str]) -> None:
    done = _run(crash_at)
    assert done.returncode == EXIT_CODE
    assert done.stdout.split() == printed
    assert "crashpoint.fired name=sync.after_page_fetched" in done.stderr


def test_parse() -> None:
    assert parse("push.mid_renewal") == ("push.mid_renewal", 1)
    assert parse("push.mid_renewal:7") == ("push.mid_renewal", 7)
    with pytest.raises(ValueError):
        parse("push.mid_renewal:0")


def test_in_process_call_without_env_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALSYNC_CRASH_AT", raising=False)
    for point in POINTS:
        crashpoint(point)


PLACES = {
    "sync.after_page_fetched": "jobs/sync.py",
    "sync.after_rows_before_cursor": "jobs/sync.py",
    "write.after_create_before_record": "jobs/write.py",
    "push.mid_renewal": "jobs/push.py",
}


@pytest.mark.parametrize(("point", "module"), sorted(PLACES.items()))
def test_every_point_is_placed_in_its_job(point: str, module: str) -> None:
    """A rewrite of a job must keep its crash point (the crash runs would silently miss it)."""
    source = (Path(__file__).resolve().parents[2] / module).read_text()
    assert f'crashpoint("{point}")' in source
    assert point in POINTS
