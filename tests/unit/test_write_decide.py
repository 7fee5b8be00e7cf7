"""jobs.write.decide: the next step for an appointment from its stored state (pure, no fixtures)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobs.write import Step, decide
from worker.db.appointments import Target, WritePlan
from worker.db.outbox import WAITING_ERROR, Entry
from worker.db.tables import Appointment, AppointmentEvent, CalendarLink, ExternalCalendar

ENTRY = Entry(id=1, appointment_id="a1", resource_id="r1", attempts=0)


def target(link_id: int, *, resource: str = "r1", status: str = "active", write: bool = True) -> Target:
    return Target(
        CalendarLink(id=link_id, resource_id=resource, calendar_id=f"cal{link_id}", write=write),
        ExternalCalendar(id=link_id * 10, resource_id=resource, provider="google", status=status),
    )


def plan(
    *,
    status: str = "confirmed",
    version: int = 2,
    event: tuple[str | None, int | None, bool] | None = None,
    pinned: Target | None = None,
    write: Target | None = None,
) -> WritePlan:
    """An appointment; `event` is (provider id, written version, deleted)."""
    appointment = Appointment(
        id="a1",
        resource_id="r1",
        start_at=datetime(2030, 1, 1, 9, tzinfo=UTC),
        end_at=datetime(2030, 1, 1, 10, tzinfo=UTC),
        status=status,
        title="t",
        version=version,
        attendees=[],
    )
    row = None
    if event is not None:
        link = pinned.link.id if pinned else 1
        row = AppointmentEvent(
            appointment_id="a1", link_id=link, provider_event_id=event[0], written_version=event[1], deleted=event[2]
        )
    return WritePlan(appointment, "UTC", row, pinned, write)


OLD, NEW = target(1, write=False), target(2)


@pytest.mark.parametrize(
    ("given", "action", "link", "pin"),
    [
        (None, "skip", None, False),
        (plan(write=NEW), "create", 2, True),
        (plan(write=None), "wait", None, False),
        (plan(write=target(2, status="reauth_required")), "wait", None, False),
        (plan(status="cancelled", write=NEW), "unchanged", None, False),
        (plan(event=("e1", 1, False), pinned=OLD, write=NEW), "patch", 1, False),
        (plan(event=("e1", 2, False), pinned=OLD, write=NEW), "unchanged", None, False),
        (plan(event=(None, None, False), pinned=OLD, write=NEW), "create", 1, False),
        (plan(status="cancelled", event=("e1", 1, False), pinned=OLD, write=NEW), "delete", 1, False),
        (plan(status="cancelled", event=("e1", 1, True), pinned=OLD, write=NEW), "unchanged", None, False),
        (plan(event=("e1", 1, True), pinned=OLD, write=NEW), "create", 2, True),
        (plan(event=("e1", 1, False), pinned=target(1, status="reauth_required"), write=NEW), "wait", None, False),
        (plan(event=("e1", 1, False), pinned=target(3, resource="r0"), write=NEW), "leave", 3, False),
        (
            plan(event=("e1", 1, False), pinned=target(3, resource="r0", status="error"), write=NEW),
            "leave",
            None,
            False,
        ),
    ],
)
def test_decide(given: WritePlan | None, action: str, link: int | None, pin: bool) -> None:
    step: Step = decide(ENTRY, given)
    assert (step.action, step.target.link.id if step.target else None, step.pin) == (action, link, pin)


def test_a_wait_says_why() -> None:
    assert decide(ENTRY, plan(write=None)).reason == WAITING_ERROR
    assert "re-authorisation" in (decide(ENTRY, plan(write=target(2, status="reauth_required"))).reason or "")
