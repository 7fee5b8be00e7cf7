"""Run Alembic from code (calsync migrate, embedded start-up, tests)."""

from __future__ import annotations

import asyncio

from alembic import command

from worker.db.engine import alembic_config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Alembic's env runs its own event loop, so it runs in a thread here."""
    await asyncio.to_thread(upgrade, url, revision)
