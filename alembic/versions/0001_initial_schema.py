"""Initial schema: the whole data model of DESIGN.md.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 15:53:13.659355
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
    )
    op.create_table(
        "resources",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_resources_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
    )
    op.create_index(op.f("ix_resources_company_id"), "resources", ["company_id"], unique=False)
    op.create_table(
        "appointments",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.String(length=1000), nullable=True),
        sa.Column(
            "attendees",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("status IN ('confirmed', 'cancelled')", name=op.f("ck_appointments_status")),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_appointments_end_after_start")),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_appointments_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    op.create_index(
        "ix_appointments_resource_range",
        "appointments",
        ["resource_id", "start_at", "end_at"],
        unique=False,
    )
    op.create_table(
        "external_calendars",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), server_default="pending", nullable=False),
        sa.Column("account_email", sa.String(length=320), nullable=True),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("access_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("oauth_state_hash", sa.String(length=128), nullable=True),
        sa.Column("pkce_verifier_enc", sa.Text(), nullable=True),
        sa.Column("auth_url_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("provider IN ('google', 'outlook')", name=op.f("ck_external_calendars_provider")),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'reauth_required', 'error')",
            name=op.f("ck_external_calendars_status"),
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_external_calendars_resource_id_resources"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_calendars")),
        sa.UniqueConstraint("oauth_state_hash", name=op.f("uq_external_calendars_oauth_state_hash")),
    )
    op.create_index(
        op.f("ix_external_calendars_resource_id"),
        "external_calendars",
        ["resource_id"],
        unique=False,
    )
    op.create_table(
        "calendar_links",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("connection_id", sa.BigInteger(), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("calendar_id", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=500), server_default="", nullable=False),
        sa.Column("read", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("write", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("sync_cursor", sa.Text(), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("push_kind", sa.String(length=24), nullable=True),
        sa.Column("push_id", sa.String(length=256), nullable=True),
        sa.Column("push_resource_id", sa.String(length=256), nullable=True),
        sa.Column("push_secret_hash", sa.String(length=128), nullable=True),
        sa.Column("push_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("push_last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("push_last_message_number", sa.BigInteger(), nullable=True),
        sa.Column("push_error", sa.Text(), nullable=True),
        sa.Column("sync_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_interactive", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("full_sync_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_audit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_drift", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "push_kind IN ('google_channel', 'graph_subscription')",
            name=op.f("ck_calendar_links_push_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["external_calendars.id"],
            name=op.f("fk_calendar_links_connection_id_external_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_calendar_links_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_links")),
        sa.UniqueConstraint("connection_id", "calendar_id", name="uq_calendar_links_connection_calendar"),
        sa.UniqueConstraint("push_id", name=op.f("uq_calendar_links_push_id")),
    )
    op.create_index(op.f("ix_calendar_links_connection_id"), "calendar_links", ["connection_id"], unique=False)
    op.create_index(
        "ix_calendar_links_due",
        "calendar_links",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("sync_requested_at IS NOT NULL"),
    )
    op.create_index(
        "uq_calendar_links_one_write",
        "calendar_links",
        ["resource_id"],
        unique=True,
        postgresql_where=sa.text("write"),
    )
    op.create_table(
        "sync_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.BigInteger(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column(
            "progress",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f("ck_sync_jobs_status")),
        sa.CheckConstraint("end_date > start_date", name=op.f("ck_sync_jobs_end_after_start")),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["external_calendars.id"],
            name=op.f("fk_sync_jobs_connection_id_external_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_sync_jobs_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_jobs")),
    )
    op.create_index(op.f("ix_sync_jobs_resource_id"), "sync_jobs", ["resource_id"], unique=False)
    op.create_table(
        "write_outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("appointment_id", sa.String(length=128), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=24), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "enqueued_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("state IN ('pending', 'waiting_calendar', 'failed')", name=op.f("ck_write_outbox_state")),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_write_outbox_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_write_outbox_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_outbox")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_write_outbox_appointment_id")),
    )
    op.create_index("ix_write_outbox_due", "write_outbox", ["next_attempt_at"], unique=False)
    op.create_table(
        "appointment_events",
        sa.Column("appointment_id", sa.String(length=128), nullable=False),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_event_id", sa.String(length=1100), nullable=True),
        sa.Column("etag", sa.String(length=256), nullable=True),
        sa.Column("written_version", sa.BigInteger(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_events_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["calendar_links.id"],
            name=op.f("fk_appointment_events_link_id_calendar_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("appointment_id", name=op.f("pk_appointment_events")),
    )
    op.create_index(op.f("ix_appointment_events_link_id"), "appointment_events", ["link_id"], unique=False)
    op.create_table(
        "quarantined_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_event_id", sa.String(length=1100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["calendar_links.id"],
            name=op.f("fk_quarantined_events_link_id_calendar_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_events")),
        sa.UniqueConstraint("link_id", "provider_event_id", name="uq_quarantined_events_link_event"),
    )
    op.create_table(
        "unavailability",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_event_id", sa.String(length=1100), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("all_day", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("show_as", sa.String(length=24), server_default="busy", nullable=False),
        sa.Column("rule", sa.String(length=32), server_default="busy", nullable=False),
        sa.Column("etag", sa.String(length=256), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "show_as IN ('busy', 'tentative', 'oof', 'working_elsewhere', 'free', 'unknown')",
            name=op.f("ck_unavailability_show_as"),
        ),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_unavailability_end_after_start")),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["calendar_links.id"],
            name=op.f("fk_unavailability_link_id_calendar_links"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_unavailability_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unavailability")),
        sa.UniqueConstraint("link_id", "provider_event_id", name="uq_unavailability_link_event"),
    )
    op.create_index(
        "ix_unavailability_resource_range",
        "unavailability",
        ["resource_id", "start_at", "end_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_unavailability_resource_range", table_name="unavailability")
    op.drop_table("unavailability")
    op.drop_table("quarantined_events")
    op.drop_index(op.f("ix_appointment_events_link_id"), table_name="appointment_events")
    op.drop_table("appointment_events")
    op.drop_index("ix_write_outbox_due", table_name="write_outbox")
    op.drop_table("write_outbox")
    op.drop_index(op.f("ix_sync_jobs_resource_id"), table_name="sync_jobs")
    op.drop_table("sync_jobs")
    op.drop_index(
        "uq_calendar_links_one_write",
        table_name="calendar_links",
        postgresql_where=sa.text("write"),
    )
    op.drop_index(
        "ix_calendar_links_due",
        table_name="calendar_links",
        postgresql_where=sa.text("sync_requested_at IS NOT NULL"),
    )
    op.drop_index(op.f("ix_calendar_links_connection_id"), table_name="calendar_links")
    op.drop_table("calendar_links")
    op.drop_index(op.f("ix_external_calendars_resource_id"), table_name="external_calendars")
    op.drop_table("external_calendars")
    op.drop_index("ix_appointments_resource_range", table_name="appointments")
    op.drop_table("appointments")
    op.drop_index(op.f("ix_resources_company_id"), table_name="resources")
    op.drop_table("resources")
    op.drop_table("companies")
