"""The image's install step, run here: the Dockerfile's files → a wheel → an installed calsync.

Docker cannot build on the development machines, so this test reads the Dockerfile, copies
exactly what its build stage copies, runs the same `pip wheel`, and checks what an image
would hold: every package and data file, the console script, and the runtime files
(alembic, worker.toml) in the working directory where worker/db/engine.py looks for them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("worker", "jobs", "providers")
DATA_SUFFIXES = (".html", ".json")


def stages() -> list[list[str]]:
    """The Dockerfile's instructions, one list per stage (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    out: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("FROM "):
            out.append([])
        if out and line and not line.startswith("#"):
            out[-1].append(line)
    return out


def copied(stage: list[str]) -> list[str]:
    """Sources of the stage's COPY lines that copy from the build context."""
    paths: list[str] = []
    for line in stage:
        parts = line.split()
        if parts[0] == "COPY" and not any(p.startswith("--from") for p in parts):
            paths += [p for p in parts[1:-1] if not p.startswith("--")]
    return paths


def test_dockerfile_is_multi_stage_slim_pinned_non_root_and_health_checked() -> None:
    build, runtime = stages()
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+", text), "base image pinned to an exact tag"
    assert build[0].endswith("AS build") and runtime[0] == "FROM ${PYTHON_IMAGE}"
    user = next(line for line in runtime if line.startswith("USER "))
    assert user.split()[1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") and "/healthz" in line for line in runtime)
    assert 'ENTRYPOINT ["calsync"]' in runtime and 'CMD ["serve"]' in runtime
    assert "[dev]" not in text, "runtime dependencies only"
    assert sorted(copied(runtime)) == sorted(["alembic.ini", "worker.toml", "alembic"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from exactly what the Dockerfile's build stage copies."""
    src = tmp_path_factory.mktemp("src")
    for name in copied(stages()[0]):
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, src / name)
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("calsync-*.whl")
    return found


def repo_files(suffixes: tuple[str, ...]) -> set[str]:
    """Files of our packages (as wheel paths) with one of the suffixes."""
    found = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            if path.suffix in suffixes and "__pycache__" not in path.parts and path.is_file():
                found.add(path.relative_to(REPO).as_posix())
    return found


def test_wheel_holds_every_module_data_file_and_the_console_script(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    expected = {f for f in tracked if f.endswith((".py", *DATA_SUFFIXES))}
    assert expected, "no package files found"
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel (so not in the image): {missing}"
    assert repo_files(DATA_SUFFIXES) <= names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert re.search(r"^calsync = worker\.cli:main$", text, re.M), text


def test_installed_wheel_runs_from_the_image_workdir(wheel: Path, tmp_path: Path) -> None:
    """Installed (not the checkout), with alembic in the working directory as the image has it."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    app = tmp_path / "app"
    app.mkdir()
    for name in copied(stages()[1]):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, app / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")} | {"PYTHONPATH": str(site)}
    probe = "import worker, worker.db.engine as e; print(worker.__file__); print(e.ROOT); print(e.head_revision('postgresql://x@h/d'))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=app, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith(str(site)), "imported the checkout, not the installed wheel"
    assert Path(out[1]) == app
    assert out[2] and out[2] != "None"
    usage = subprocess.run(
        [sys.executable, "-m", "worker", "--help"], cwd=app, env=env, capture_output=True, text=True, check=True
    )
    assert "serve" in usage.stdout and "migrate" in usage.stdout
