"""Migrations: upgrade, downgrade to base, upgrade again; no drift from the models."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from tests.conftest import fresh_database
from worker.db.engine import make_engine
from worker.db.migrate import downgrade, upgrade
from worker.db.tables import Base


def _diff(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_upgrade_downgrade_upgrade_without_drift(pg_server_url: str) -> None:
    with fresh_database(pg_server_url) as url:
        await asyncio.to_thread(upgrade, url)
        await asyncio.to_thread(downgrade, url, "base")
        engine = make_engine(url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}
        await asyncio.to_thread(upgrade, url)
        async with engine.connect() as conn:
            assert {"unavailability", "calendar_links", "write_outbox"} <= await conn.run_sync(_tables)
            assert await conn.run_sync(_diff) == []
        await engine.dispose()
