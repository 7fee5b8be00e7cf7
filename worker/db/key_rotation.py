"""Re-encrypt every stored secret under the first configured key (calsync rotate-keys)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from sqlalchemy import Column, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import ExternalCalendar, WebhookEndpoint

# Every encrypted column calsync stores, by table.
ENCRYPTED = {
    ExternalCalendar: ("refresh_token_enc", "access_token_enc", "pkce_verifier_enc"),
    WebhookEndpoint: ("secret_enc", "previous_secret_enc"),
}


async def rotate_all(*, session: AsyncSession, rotate: Callable[[str], str]) -> int:
    """Rewrite each encrypted value with `rotate` (MultiFernet.rotate); returns values rewritten."""
    total = 0
    for table, names in ENCRYPTED.items():
        columns: list[Column[str]] = [getattr(table, n) for n in names]
        rows = (await session.execute(select(table.id, *columns))).all()  # type: ignore[attr-defined]
        params = []
        for row in rows:
            values = {n: (rotate(v) if v else v) for n, v in zip(names, row[1:], strict=True)}
            total += sum(1 for v in row[1:] if v)
            params.append({"row_id": row[0], **values})
        if params:
            core = cast(Table, table.__table__)  # Core, not ORM: an executemany keyed by "row_id"
            stmt = update(core).where(core.c.id == bindparam("row_id")).values({n: bindparam(n) for n in names})
            await session.execute(stmt, params)
    return total
