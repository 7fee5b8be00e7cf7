"""Configuration: defaults, file, environment overlay, and every error path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from worker.config import ConfigError, load

REPO = Path(__file__).resolve().parents[2]


def test_shipped_file_loads_with_safe_defaults() -> None:
    settings = load(REPO / "worker.toml", environ={})
    assert settings.embedded_database and settings.embedded_redis
    assert settings.sync.window_future_days == 365
    assert settings.auth.company_claim == "companyId"


def test_environment_overrides_file(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[server]\nport = 9000\n")
    env = {
        "CALSYNC_SERVER__PORT": "9100",
        "CALSYNC_SYNC__POLL_SECONDS": "42",
        "CALSYNC_AUTH__ALGORITHMS": '["HS256", "RS256"]',
        "CALSYNC_CRYPTO__KEYS": "a,b",
    }
    settings = load(file, environ=env)
    assert settings.server.port == 9100
    assert settings.sync.poll_seconds == 42
    assert settings.auth.algorithms == ("HS256", "RS256")
    assert len(settings.crypto.keys) == 2


def test_config_env_variable_selects_file(tmp_path: Path) -> None:
    file = tmp_path / "other.toml"
    file.write_text("[server]\nport = 9200\n")
    assert load(environ={"CALSYNC_CONFIG": str(file)}).server.port == 9200


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("[nope]\nx = 1\n", {}, "nope"),
        ("[server]\nport = 'eighty'\n", {}, "server.port"),
        ("[server]\nport = 70000\n", {}, "server.port"),
        ("[database]\nurl = 'mysql://x/y'\n", {}, "database.url"),
        ("[redis]\nurl = 'not a url'\n", {}, "redis.url"),
        ("", {"CALSYNC_SYNC__POLL_SECONDS": "soon"}, "sync.poll_seconds"),
        ("[database]\nurl = 'postgresql://h/db'\n", {}, "auth.jwt_secret"),
        (
            "[database]\nurl = 'postgresql://h/db'\n[auth]\njwt_secret = 's'\n",
            {},
            "crypto.keys",
        ),
        (
            "[database]\nurl = 'postgresql://h/db'\n[auth]\njwt_secret = 's'\n[crypto]\nkeys = ['k']\n"
            "[google]\nclient_id = 'id'\n",
            {},
            "google.client_secret",
        ),
        ("[server\n", {}, "c.toml"),
    ],
)
def test_invalid_configuration_names_the_key(tmp_path: Path, text: str, env: dict[str, str], key: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(file, environ=env)
    assert info.value.key.endswith(key)


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "absent.toml", environ={})


def test_secrets_do_not_show_in_repr(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[auth]\njwt_secret = 'hunter2-very-secret'\n[google]\nclient_secret = 'gsecret'\n")
    settings = load(file, environ={})
    assert "hunter2" not in repr(settings) and "gsecret" not in repr(settings)


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[server]\nport = 'x'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(file), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "server.port" in proc.stderr and "Traceback" not in proc.stderr
