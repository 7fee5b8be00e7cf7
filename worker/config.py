"""Settings: read worker.toml, overlay CALSYNC_SECTION__KEY variables, validate, freeze.

`load()` is the only way in; nothing here runs at import time. A bad file or variable
raises `ConfigError` naming the key, which the CLI turns into one line and exit 2.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ENV_PREFIX = "CALSYNC_"
DEFAULT_PATH = Path("worker.toml")


class ConfigError(Exception):
    """A configuration key is unknown, of the wrong type or missing."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"must be a URL starting with one of {', '.join(s + '://' for s in schemes)}")
    if not parts.netloc and "host=" not in parts.query and parts.scheme != "unix":
        raise ValueError("URL has no host")
    return value


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = ""
    max_body_bytes: int = Field(1_048_576, gt=0)
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    request_timeout_seconds: float = Field(30.0, gt=0)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str) -> str:
        return _check_url(v, ("http", "https")).rstrip("/")


class DatabaseSettings(_Section):
    url: str = ""
    pool_size: int = Field(10, ge=1)
    auto_migrate: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v, ("postgresql", "postgresql+psycopg", "postgres"))


class RedisSettings(_Section):
    url: str = ""
    prefix: str = "calsync:"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v, ("redis", "rediss", "unix"))


class EmbeddedSettings(_Section):
    data_dir: str = "data"


class AuthSettings(_Section):
    jwt_secret: SecretStr = SecretStr("")
    jwt_public_key_file: str = ""
    algorithms: tuple[str, ...] = ("HS256",)
    issuer: str = "calsync-dev"
    audience: str = "calsync"
    company_claim: str = "companyId"
    leeway_seconds: int = Field(30, ge=0)
    admin_token: SecretStr = SecretStr("")

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"HS256", "HS384", "HS512", "RS256", "ES256"}
        bad = [a for a in v if a not in allowed]
        if bad or not v:
            raise ValueError(f"must be a non-empty list drawn from {sorted(allowed)}")
        return v


class CryptoSettings(_Section):
    keys: tuple[SecretStr, ...] = ()

    @field_validator("keys", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [k.strip() for k in v.split(",") if k.strip()] if isinstance(v, str) else v


class GoogleSettings(_Section):
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_url: str = "https://oauth2.googleapis.com/token"
    revoke_url: str = "https://oauth2.googleapis.com/revoke"
    userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    api_base: str = "https://www.googleapis.com/calendar/v3"
    scopes: tuple[str, ...] = (
        "openid",
        "email",
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    )
    requests_per_second: float = Field(10.0, gt=0)  # Google allows 600/min per user


class OutlookSettings(_Section):
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    authority: str = "https://login.microsoftonline.com"
    tenant: str = "common"
    api_base: str = "https://graph.microsoft.com/v1.0"
    scopes: tuple[str, ...] = ("offline_access", "User.Read", "Calendars.ReadWrite")
    max_in_flight: int = Field(3, ge=1, le=4)  # Graph allows 4 concurrent per mailbox


class SandboxSettings(_Section):
    # "auto": start the in-process provider sandbox for each provider without a client_id.
    mode: Literal["auto", "off"] = "auto"
    port: int = Field(0, ge=0, le=65535)


class HttpSettings(_Section):
    timeout_seconds: float = Field(20.0, gt=0)
    retry_attempts: int = Field(5, ge=1)
    retry_base_seconds: float = Field(0.5, gt=0)
    retry_cap_seconds: float = Field(30.0, gt=0)
    retry_deadline_seconds: float = Field(60.0, gt=0)


class OAuthSettings(_Section):
    state_ttl_seconds: int = Field(3600, gt=0)


class SyncSettings(_Section):
    window_past_days: int = Field(7, ge=0)
    window_future_days: int = Field(365, ge=1)
    poll_seconds: int = Field(300, ge=1)  # links without healthy push
    reconcile_seconds: int = Field(3600, ge=1)  # links with healthy push
    sweep_seconds: float = Field(1.0, gt=0)  # how often a worker looks for due work
    lease_seconds: int = Field(120, ge=5)
    backoff_base_seconds: float = Field(5.0, gt=0)
    backoff_cap_seconds: float = Field(3600.0, gt=0)
    bulk_max_days: int = Field(400, ge=1)
    bulk_wait_seconds: float = Field(10.0, ge=0)
    just_in_time_deadline_seconds: float = Field(2.0, gt=0)
    concurrency: int = Field(8, ge=1)


class NotifySettings(_Section):
    timeout_seconds: float = Field(5.0, gt=0)  # a slow receiver costs at most this per attempt
    retry_for_seconds: int = Field(86400, ge=0)  # give up on a delivery after this long
    backoff_base_seconds: float = Field(1.0, gt=0)
    backoff_cap_seconds: float = Field(600.0, gt=0)
    sweep_seconds: float = Field(1.0, gt=0)
    batch: int = Field(50, ge=1)
    concurrency: int = Field(10, ge=1)
    secret_overlap_seconds: int = Field(86400, ge=0)


class AvailabilitySettings(_Section):
    max_range_days: int = Field(62, ge=1, le=400)  # one query covers about two months of slots
    stale_policy: Literal["closed", "open"] = "closed"  # default when resource and company say nothing
    stale_after_seconds: int = Field(900, ge=1)  # a read calendar older than this is stale
    cache_ttl_seconds: int = Field(300, ge=1)  # bounds staleness if a purge is lost while Redis is down
    redis_timeout_seconds: float = Field(0.5, gt=0)  # a slow Redis costs at most this per call
    compute_lock_seconds: float = Field(5.0, gt=0)  # another process waits this long at most for one compute


class PushSettings(_Section):
    enabled: bool = True  # open Google channels / Graph subscriptions for read links
    google_ttl_seconds: int = Field(604800, ge=60)  # requested channel TTL; Google grants at most 7 days
    subscription_minutes: int = Field(4200, ge=45, le=10080)  # Graph caps Outlook events at 4230; margin for clocks
    renew_fraction: float = Field(0.35, gt=0, lt=1)  # renew when this share of the lifetime is left (Graph: ~1 day)
    spread_fraction: float = Field(0.1, ge=0, lt=0.5)  # plus up to this share earlier, at random: renewals spread out
    sweep_seconds: float = Field(5.0, gt=0)  # how often due openings/renewals are looked for
    batch: int = Field(50, ge=1)  # links claimed per sweep
    concurrency: int = Field(8, ge=1)  # provider calls in flight per process
    lease_seconds: int = Field(120, ge=5)  # a claimed renewal is retried after this if its worker died
    backoff_base_seconds: float = Field(30.0, gt=0)  # first retry after a failed open/renewal (full jitter)
    backoff_cap_seconds: float = Field(3600.0, gt=0)  # longest wait between retries


class WriteSettings(_Section):
    sweep_seconds: float = Field(1.0, gt=0)  # how often due appointment writes are looked for
    batch: int = Field(200, ge=1)  # outbox entries leased at once per process
    concurrency: int = Field(64, ge=1)  # provider calls in flight per process (budgets still cap each account)
    lease_seconds: int = Field(120, ge=5)  # longer than one write with its retries (http deadline)
    backoff_base_seconds: float = Field(5.0, gt=0)  # first retry of a failed write (full jitter)
    backoff_cap_seconds: float = Field(3600.0, gt=0)  # longest wait between two retries of one write


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()
    auth: AuthSettings = AuthSettings()
    crypto: CryptoSettings = CryptoSettings()
    google: GoogleSettings = GoogleSettings()
    outlook: OutlookSettings = OutlookSettings()
    sandbox: SandboxSettings = SandboxSettings()
    http: HttpSettings = HttpSettings()
    oauth: OAuthSettings = OAuthSettings()
    sync: SyncSettings = SyncSettings()
    notify: NotifySettings = NotifySettings()
    availability: AvailabilitySettings = AvailabilitySettings()
    push: PushSettings = PushSettings()
    write: WriteSettings = WriteSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def embedded_database(self) -> bool:
        return not self.database.url

    @property
    def embedded_redis(self) -> bool:
        return not self.redis.url


def _parse_env_value(raw: str) -> Any:
    """Read a variable as a TOML value when it is one (numbers, booleans, arrays), else text."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _overlay_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "CALSYNC_CONFIG":
            continue
        if name.startswith(("CALSYNC_TEST_",)):
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(section, "is not a section")
        target[key] = _parse_env_value(raw)


def _first_error(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return ConfigError(key, "unknown key")
    return ConfigError(key, err["msg"].removeprefix("Value error, "))


def load(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load settings from a TOML file (optional) and CALSYNC_* variables."""
    environ = os.environ if environ is None else environ
    chosen = path or environ.get("CALSYNC_CONFIG")
    file = Path(chosen) if chosen else DEFAULT_PATH
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(file), f"not valid TOML ({exc})") from None
    elif chosen:
        raise ConfigError(str(file), "config file not found")
    _overlay_env(data, environ)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None
    _require_secrets(settings)
    return settings


def _require_secrets(settings: Settings) -> None:
    """Production (a configured database) must name its secrets; embedded runs generate them."""
    if settings.embedded_database:
        return
    auth = settings.auth
    if not auth.jwt_secret.get_secret_value() and not auth.jwt_public_key_file:
        raise ConfigError("auth.jwt_secret", "required when database.url is set (or auth.jwt_public_key_file)")
    if not settings.crypto.keys:
        raise ConfigError("crypto.keys", "required when database.url is set")
    for section in ("google", "outlook"):
        provider = getattr(settings, section)
        if provider.client_id and not provider.client_secret.get_secret_value():
            raise ConfigError(f"{section}.client_secret", f"required when {section}.client_id is set")


def with_overrides(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """A copy of settings with some keys of some sections replaced (used by tests and the daemon)."""
    data = settings.model_dump()
    for section, values in sections.items():
        data[section] = {**data[section], **values}
    return Settings.model_validate(_unwrap_secrets(data))


def _unwrap_secrets(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unwrap_secrets(v) for v in value]
    return value
