"""Unavailability rows reference their link by (link_id, resource_id): one foreign key instead of two.

A row's resource_id is a copy of its link's, kept for the availability index; the composite
key makes the database keep the copy true, and a bulk insert checks one key per row instead
of two (the checks were a third of the insert's cost in bench/ingest).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 19:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_unique_constraint("uq_calendar_links_id_resource", "calendar_links", ["id", "resource_id"])
    op.drop_constraint("fk_unavailability_resource_id_resources", "unavailability", type_="foreignkey")
    op.drop_constraint("fk_unavailability_link_id_calendar_links", "unavailability", type_="foreignkey")
    op.create_foreign_key(
        "fk_unavailability_link_resource",
        "unavailability",
        "calendar_links",
        ["link_id", "resource_id"],
        ["id", "resource_id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint("fk_unavailability_link_resource", "unavailability", type_="foreignkey")
    op.create_foreign_key(
        "fk_unavailability_link_id_calendar_links",
        "unavailability",
        "calendar_links",
        ["link_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_foreign_key(
        "fk_unavailability_resource_id_resources",
        "unavailability",
        "resources",
        ["resource_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.drop_constraint("uq_calendar_links_id_resource", "calendar_links", type_="unique")
