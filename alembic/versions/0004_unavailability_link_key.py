"""Unavailability follows its link through a trigger and a guarded insert, not per-row foreign keys.

A full sync inserts thousands of rows of one link in one statement, and PostgreSQL checks a
foreign key row by row: the two keys (link, resource) were a third of the insert's cost in
bench/ingest. Both guarantees they gave are kept, once per statement instead of per row:

- cascade: a statement-level trigger deletes the rows of deleted calendar links;
- no orphans: the one writer (worker/db/unavailability.upsert) joins the link row FOR KEY
  SHARE (the lock a foreign key takes), so it writes nothing for a link that is gone or
  belongs to another resource, and a concurrent delete waits for it, then cascades.

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

CASCADE_FUNCTION = """
CREATE FUNCTION unavailability_follow_deleted_links() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM unavailability u USING deleted_links d WHERE u.link_id = d.id;
    RETURN NULL;
END
$$
"""
CASCADE_TRIGGER = """
CREATE TRIGGER calendar_links_cascade_unavailability AFTER DELETE ON calendar_links
REFERENCING OLD TABLE AS deleted_links FOR EACH STATEMENT
EXECUTE FUNCTION unavailability_follow_deleted_links()
"""


def upgrade() -> None:
    op.drop_constraint("fk_unavailability_resource_id_resources", "unavailability", type_="foreignkey")
    op.drop_constraint("fk_unavailability_link_id_calendar_links", "unavailability", type_="foreignkey")
    op.execute(CASCADE_FUNCTION)
    op.execute(CASCADE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER calendar_links_cascade_unavailability ON calendar_links")
    op.execute("DROP FUNCTION unavailability_follow_deleted_links()")
    op.execute("DELETE FROM unavailability u WHERE NOT EXISTS (SELECT FROM calendar_links l WHERE l.id = u.link_id)")
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
