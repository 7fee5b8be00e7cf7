"""The async engine and session factory (psycopg 3), and the "schema at head?" check."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# The checkout holds alembic/ beside the packages; an installed image keeps it in the workdir.
_CHECKOUT = Path(__file__).resolve().parents[2]
ROOT = _CHECKOUT if (_CHECKOUT / "alembic.ini").exists() else Path.cwd()


def async_url(url: str) -> str:
    """Normalise any postgres URL to the psycopg 3 async driver."""
    parts = urlsplit(url)
    scheme = "postgresql+psycopg"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine whose pool survives a restarted server (pre-ping)."""
    return create_async_engine(async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory handed to jobs and handlers; callers own transactions.

    Open every session with `sessions.begin()`, reads included: it commits. A rollback makes
    psycopg drop every statement the connection had prepared, so reads that ended in one
    kept the hot statements (claim, sync target, insert) from ever being prepared: each
    was planned anew on every run (half its PostgreSQL CPU).
    """
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at our migrations and the given database."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
