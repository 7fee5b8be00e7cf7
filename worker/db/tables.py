"""SQLAlchemy 2 models: the whole data model of DESIGN.md, with the constraints it demands.

ON DELETE choices: a resource cannot be deleted while it has connections (RESTRICT: the
disconnect path must revoke grants first); everything below a connection or a link goes
with it (CASCADE); unavailability and appointments go with their resource.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _created() -> Mapped[datetime]:
    return mapped_column(TZ, server_default=func.now(), nullable=False)


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), server_default="", nullable=False)
    # Company-wide busy rules and freshness policy; resources may override (see rules).
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"), nullable=False)
    created_at: Mapped[datetime] = _created()


class Resource(Base):
    __tablename__ = "resources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), server_default="", nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC", nullable=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"), nullable=False)
    created_at: Mapped[datetime] = _created()


class ExternalCalendar(Base):
    """One OAuth connection of one resource to one provider account (externalCalendarId)."""

    __tablename__ = "external_calendars"
    __table_args__ = (
        CheckConstraint("provider IN ('google', 'outlook')", name="provider"),
        CheckConstraint("status IN ('pending', 'active', 'reauth_required', 'error')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resources.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(24), server_default="pending", nullable=False)
    account_email: Mapped[str | None] = mapped_column(String(320))
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    # OAuth state: we keep only a hash of the nonce, so a dump cannot replay an authUrl.
    oauth_state_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    pkce_verifier_enc: Mapped[str | None] = mapped_column(Text)
    auth_url_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(Text)
    connected_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), onupdate=func.now(), nullable=False)


class CalendarLink(Base):
    """One provider calendar of a connection that the resource reads from or writes to."""

    __tablename__ = "calendar_links"
    __table_args__ = (
        UniqueConstraint("connection_id", "calendar_id", name="uq_calendar_links_connection_calendar"),
        # At most one write calendar per resource, enforced by the database.
        Index("uq_calendar_links_one_write", "resource_id", unique=True, postgresql_where=text("write")),
        Index("ix_calendar_links_due", "next_attempt_at", postgresql_where=text("sync_requested_at IS NOT NULL")),
        CheckConstraint("push_kind IN ('google_channel', 'graph_subscription')", name="push_kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("external_calendars.id", ondelete="CASCADE"), nullable=False, index=True
    )
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), nullable=False)
    calendar_id: Mapped[str] = mapped_column(String(1024), nullable=False)
    name: Mapped[str] = mapped_column(String(500), server_default="", nullable=False)
    read: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), nullable=False)
    write: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), nullable=False)
    primary: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), nullable=False)
    # Sync cursor: Google nextSyncToken or the whole Graph deltaLink, and the window it covers.
    sync_cursor: Mapped[str | None] = mapped_column(Text)
    window_start: Mapped[datetime | None] = mapped_column(TZ)
    window_end: Mapped[datetime | None] = mapped_column(TZ)
    # Push: Google channel or Graph subscription; the secret is stored only as a hash.
    push_kind: Mapped[str | None] = mapped_column(String(24))
    push_id: Mapped[str | None] = mapped_column(String(256), unique=True)
    push_resource_id: Mapped[str | None] = mapped_column(String(256))
    push_secret_hash: Mapped[str | None] = mapped_column(String(128))
    push_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    push_last_message_at: Mapped[datetime | None] = mapped_column(TZ)
    push_last_message_number: Mapped[int | None] = mapped_column(BigInteger)
    push_error: Mapped[str | None] = mapped_column(Text)
    # When push is next opened, renewed or retried (jittered; also a short lease while in flight).
    push_renew_at: Mapped[datetime | None] = mapped_column(TZ, index=True)
    push_failures: Mapped[int] = mapped_column(Integer, server_default="0", nullable=False)
    # Coordination: a durable request, a lease, per-link backoff.
    sync_requested_at: Mapped[datetime | None] = mapped_column(TZ)
    sync_interactive: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), nullable=False)
    full_sync_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZ)
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0", nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[datetime | None] = mapped_column(TZ)
    last_audit_at: Mapped[datetime | None] = mapped_column(TZ)
    last_drift: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), onupdate=func.now(), nullable=False)


class Unavailability(Base):
    """A busy interval that an external event puts on a resource.

    No foreign keys (checked per row, they were a third of a full sync's insert cost): a
    trigger deletes the rows of deleted links, and both writers lock the link row
    (unavailability.upsert and insert_new). See alembic/versions/0004. The primary key is
    the natural one; `id` (shown in availability answers) has a sequence but no index
    (alembic/versions/0005).
    """

    __tablename__ = "unavailability"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        CheckConstraint(
            "show_as IN ('busy', 'tentative', 'oof', 'working_elsewhere', 'free', 'unknown')", name="show_as"
        ),
        Index("ix_unavailability_resource_range", "resource_id", "start_at", "end_at"),
    )

    link_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    provider_event_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Sequence("unavailability_id_seq"), nullable=False)
    resource_id: Mapped[str] = mapped_column(String(64), nullable=False)
    start_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    end_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    all_day: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), nullable=False)
    show_as: Mapped[str] = mapped_column(String(24), server_default="busy", nullable=False)
    rule: Mapped[str] = mapped_column(String(32), server_default="busy", nullable=False)
    etag: Mapped[str | None] = mapped_column(String(256))
    synced_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), nullable=False)


class QuarantinedEvent(Base):
    """A provider event that could not be parsed; kept raw so a person can see why."""

    __tablename__ = "quarantined_events"
    __table_args__ = (UniqueConstraint("link_id", "provider_event_id", name="uq_quarantined_events_link_event"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("calendar_links.id", ondelete="CASCADE"), nullable=False)
    provider_event_id: Mapped[str] = mapped_column(String(1100), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    first_seen_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), nullable=False)


class SyncJob(Base):
    """A createUnavailabilityBulk run: its range, progress and per-calendar result."""

    __tablename__ = "sync_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
        CheckConstraint("end_date > start_date", name="end_after_start"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), nullable=False, index=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("external_calendars.id", ondelete="CASCADE"))
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    end_date: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(16), server_default="running", nullable=False)
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(TZ)


class Appointment(Base):
    """The main API's appointment as calsync last heard it (version only grows)."""

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        CheckConstraint("status IN ('confirmed', 'cancelled')", name="status"),
        Index("ix_appointments_resource_range", "resource_id", "start_at", "end_at"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), nullable=False)
    start_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    end_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(1000), server_default="", nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(1000))
    attendees: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"), nullable=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), onupdate=func.now(), nullable=False)


class AppointmentEvent(Base):
    """Which provider event on which link holds an appointment (one per appointment)."""

    __tablename__ = "appointment_events"

    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"), primary_key=True)
    link_id: Mapped[int] = mapped_column(
        ForeignKey("calendar_links.id", ondelete="CASCADE"), nullable=False, index=True
    )
    provider_event_id: Mapped[str | None] = mapped_column(String(1100))
    etag: Mapped[str | None] = mapped_column(String(256))
    written_version: Mapped[int | None] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), onupdate=func.now(), nullable=False)


class WriteOutbox(Base):
    """A pending write of an appointment to its write calendar; one entry per appointment."""

    __tablename__ = "write_outbox"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'waiting_calendar', 'failed')", name="state"),
        Index("ix_write_outbox_due", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    appointment_id: Mapped[str] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), nullable=False)
    state: Mapped[str] = mapped_column(String(24), server_default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0", nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = _created()


class WebhookEndpoint(Base):
    """A URL of the main API that receives calsync's signed event notifications."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), nullable=False, index=True)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    # The signing secret must be usable, so it is encrypted rather than hashed.
    secret_enc: Mapped[str] = mapped_column(Text, nullable=False)
    previous_secret_enc: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = _created()


class WebhookDelivery(Base):
    """One event for one endpoint, delivered at least once; `event_id` is the same on every retry."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(16), server_default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0", nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), nullable=False)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = _created()
    delivered_at: Mapped[datetime | None] = mapped_column(TZ)
