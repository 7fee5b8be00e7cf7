"""Companies and resources: lookups and the company ownership check."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import Company, Resource


async def owned_resource(*, session: AsyncSession, resource_id: str, company_id: str) -> Resource | None:
    """The resource if it belongs to the company; None otherwise (indistinguishable from absent)."""
    stmt = select(Resource).where(Resource.id == resource_id, Resource.company_id == company_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_resource(*, session: AsyncSession, resource_id: str) -> Resource | None:
    return await session.get(Resource, resource_id)


async def ensure_company(*, session: AsyncSession, company_id: str, name: str = "") -> None:
    """Create the company row if it does not exist yet."""
    stmt = insert(Company).values(id=company_id, name=name).on_conflict_do_nothing(index_elements=["id"])
    await session.execute(stmt)


async def create_resource(
    *,
    session: AsyncSession,
    resource_id: str,
    company_id: str,
    name: str = "",
    timezone: str = "UTC",
    settings: dict[str, Any] | None = None,
) -> Resource:
    """Insert a resource (and its company if new)."""
    await ensure_company(session=session, company_id=company_id)
    resource = Resource(id=resource_id, company_id=company_id, name=name, timezone=timezone, settings=settings or {})
    session.add(resource)
    await session.flush()
    return resource


async def delete_resource(*, session: AsyncSession, resource_id: str) -> int:
    """Delete a resource row; its connections must be gone first (RESTRICT)."""
    result = await session.execute(delete(Resource).where(Resource.id == resource_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
