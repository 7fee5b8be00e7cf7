"""The unavailability repository: set-based upserts that touch only changed rows, deletes, reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.ingest import Ingest, PageRows
from tests.factories import make_connection, make_link, make_resource
from tests.waiting import until
from worker.db import unavailability as repo
from worker.db.tables import CalendarLink, Unavailability
from worker.db.unavailability import BusyRow

T = datetime(2026, 12, 1, 9, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
async def link(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[CalendarLink]:
    resource = await make_resource(sessions)
    connection = await make_connection(sessions, resource=resource, status="active")
    yield await make_link(sessions, connection=connection, read=True)


def rows(n: int, shift: timedelta = timedelta()) -> list[BusyRow]:
    return [BusyRow(f"e{i}", T + i * H + shift, T + i * H + shift + H / 2) for i in range(n)]


async def upsert(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink, batch: list[BusyRow]
) -> tuple[int, int]:
    async with sessions() as s, s.begin():
        return await repo.upsert(session=s, resource_id=link.resource_id, link_id=link.id, rows=batch, now=T)


async def stored(sessions: async_sessionmaker[AsyncSession], link: CalendarLink) -> list[tuple[str, datetime, str]]:
    async with sessions() as s:
        stmt = select(Unavailability.provider_event_id, Unavailability.start_at, Unavailability.etag).where(
            Unavailability.link_id == link.id
        )
        return sorted(tuple(r) for r in (await s.execute(stmt)).all())  # type: ignore[misc]


async def test_upsert_counts_and_skips_unchanged_rows(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink
) -> None:
    assert await upsert(sessions, link, rows(3)) == (3, 0)
    assert await upsert(sessions, link, rows(3)) == (0, 0)
    retagged = [BusyRow(r.event_id, r.start, r.end, etag="new") for r in rows(3)]
    assert await upsert(sessions, link, retagged) == (0, 0)  # same busy time: no write
    assert {e for _, _, e in await stored(sessions, link)} == {None}
    moved = rows(2, shift=H / 4) + rows(4)[2:]
    assert await upsert(sessions, link, moved) == (1, 2)
    assert [(i, s) for i, s, _ in await stored(sessions, link)] == [
        ("e0", T + H / 4),
        ("e1", T + H + H / 4),
        ("e2", T + 2 * H),
        ("e3", T + 3 * H),
    ]


async def test_instants_are_stored_exactly_to_the_microsecond(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink
) -> None:
    """Rows travel as integer microseconds since 1970: none may move, whatever its year."""
    us = timedelta(microseconds=1)
    starts = [T + 999_999 * us, T - 1 * us, datetime(1969, 12, 31, 23, 59, 59, 999_999, UTC)]
    starts += [datetime(2199, 1, 2, 3, 4, 5, 999_999, UTC), datetime(2026, 3, 29, 1, 0, 0, 1, UTC)]
    starts += [datetime(9999, 12, 30, 23, 59, 59, 999_995, UTC), datetime(1, 1, 2, 0, 0, 0, 1, UTC)]
    batch = [BusyRow(f"e{i}", start, start + 3 * us) for i, start in enumerate(starts)]
    assert await upsert(sessions, link, batch) == (len(batch), 0)
    async with sessions() as s:
        stmt = select(Unavailability.provider_event_id, Unavailability.start_at, Unavailability.end_at)
        got = {i: (a, b) for i, a, b in (await s.execute(stmt.where(Unavailability.link_id == link.id))).all()}
    assert got == {r.event_id: (r.start, r.end) for r in batch}
    assert await upsert(sessions, link, batch) == (0, 0)  # and read back equal, so nothing rewrites


async def test_deletes_by_id_unseen_and_in_range(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink
) -> None:
    await upsert(sessions, link, rows(6))
    async with sessions() as s, s.begin():
        assert await repo.delete_events(session=s, link_id=link.id, event_ids=["e0", "nope"]) == 1
        assert (
            await repo.delete_unseen_in_range(
                session=s, link_id=link.id, keep_ids=["e2"], start=T + 2 * H, end=T + 4 * H
            )
            == 1
        )  # e3 overlaps [start, end) and was not kept; e4 starts at end
        assert [i for i, _, _ in await _ids(s, link)] == ["e1", "e2", "e4", "e5"]
        assert await repo.delete_unseen(session=s, link_id=link.id, keep_ids=["e5"]) == 3
    assert [i for i, _, _ in await stored(sessions, link)] == ["e5"]


async def _ids(s: AsyncSession, link: CalendarLink) -> list[tuple[str, datetime, str]]:
    stmt = select(Unavailability.provider_event_id, Unavailability.start_at, Unavailability.etag).where(
        Unavailability.link_id == link.id
    )
    return sorted(tuple(r) for r in (await s.execute(stmt)).all())  # type: ignore[misc]


async def test_busy_overlapping_is_half_open(sessions: async_sessionmaker[AsyncSession], link: CalendarLink) -> None:
    await upsert(sessions, link, rows(4))  # [9:00-9:30), [10:00-10:30), [11:00-11:30), [12:00-12:30)
    async with sessions() as s:
        spans = await repo.busy_overlapping(session=s, resource_id=link.resource_id, start=T + H / 2, end=T + 2 * H)
        assert [b.event_id for b in spans] == ["e1"]  # e0 ends at start, e2 starts at end
        assert spans[0].link_id == link.id and spans[0].show_as == "busy" and not spans[0].all_day
        assert await repo.busy_overlapping(session=s, resource_id="other", start=T, end=T + 9 * H) == []
        assert await repo.count_for_link(session=s, link_id=link.id) == 4


async def test_a_page_of_ten_thousand_is_one_statement(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink
) -> None:
    assert await upsert(sessions, link, rows(10_000)) == (10_000, 0)
    async with sessions() as s, s.begin():
        assert await repo.delete_unseen(session=s, link_id=link.id, keep_ids=[f"e{i}" for i in range(5000)]) == 5000


async def test_insert_new_writes_new_rows_and_refuses_existing_ones(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink
) -> None:
    async with sessions() as s, s.begin():
        assert await repo.insert_new(session=s, resource_id=link.resource_id, link_id=link.id, rows=rows(3), now=T) == 3
        assert await repo.insert_new(session=s, resource_id="other", link_id=link.id, rows=rows(5)[3:], now=T) == 0
    assert [i for i, _, _ in await stored(sessions, link)] == ["e0", "e1", "e2"]
    with pytest.raises(IntegrityError):  # never a silent duplicate: the caller knows the link was empty
        async with sessions() as s, s.begin():
            await repo.insert_new(session=s, resource_id=link.resource_id, link_id=link.id, rows=rows(1), now=T)


async def test_a_first_full_listing_inserts_and_still_upserts_an_id_it_repeats(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink
) -> None:
    page1, page2 = rows(3), [BusyRow("e1", T + 5 * H, T + 6 * H), *rows(5)[3:]]  # e1 listed again, moved
    async with sessions() as s, s.begin():
        ingest = Ingest(s, link.resource_id, link.id, T, full=True, fresh=True)
        for page in (page1, page2):
            await ingest.apply(PageRows(page, [], [], [r.event_id for r in page]))
        tally = await ingest.finish()
    assert (tally.added, tally.updated, tally.removed) == (5, 1, 0)
    assert [(i, start) for i, start, _ in await stored(sessions, link)] == [
        ("e0", T),
        ("e1", T + 5 * H),
        ("e2", T + 2 * H),
        ("e3", T + 3 * H),
        ("e4", T + 4 * H),
    ]


async def _delete_link(sessions: async_sessionmaker[AsyncSession], link: CalendarLink) -> None:
    async with sessions() as s, s.begin():
        await s.execute(delete(CalendarLink).where(CalendarLink.id == link.id))


async def test_rows_are_deleted_with_their_link(sessions: async_sessionmaker[AsyncSession], link: CalendarLink) -> None:
    await upsert(sessions, link, rows(3))
    await _delete_link(sessions, link)
    assert await stored(sessions, link) == []


async def test_nothing_is_written_for_a_link_that_is_gone_or_not_the_resources(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink
) -> None:
    async with sessions() as s, s.begin():
        assert await repo.upsert(session=s, resource_id="other", link_id=link.id, rows=rows(2), now=T) == (0, 0)
    assert await stored(sessions, link) == []
    await _delete_link(sessions, link)
    assert await upsert(sessions, link, rows(2)) == (0, 0)
    assert await stored(sessions, link) == []


async def test_a_link_deleted_during_a_write_takes_the_new_rows_with_it(
    sessions: async_sessionmaker[AsyncSession], link: CalendarLink
) -> None:
    """The writer holds the link as a foreign key would: the delete waits, then cascades."""
    async with sessions() as s, s.begin():
        assert await repo.upsert(session=s, resource_id=link.resource_id, link_id=link.id, rows=rows(2), now=T) == (
            2,
            0,
        )
        deleting = asyncio.create_task(_delete_link(sessions, link))
        await _until_waiting_on_a_lock(sessions, "DELETE FROM calendar_links")
        assert not deleting.done()
    await asyncio.wait_for(deleting, 10)
    assert await stored(sessions, link) == []


async def _until_waiting_on_a_lock(sessions: async_sessionmaker[AsyncSession], statement: str) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND starts_with(query, :statement)"
    )

    async def blocked() -> int:
        async with sessions() as s:
            return int((await s.execute(waiting, {"statement": statement})).scalar_one())

    await until(blocked, what=f"{statement!r} to wait on a lock")
