"""Push renewal schedule: when a link's channel/subscription is next opened or renewed, and failures.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calendar_links", sa.Column("push_renew_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("calendar_links", sa.Column("push_failures", sa.Integer(), server_default="0", nullable=False))
    op.create_index(op.f("ix_calendar_links_push_renew_at"), "calendar_links", ["push_renew_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_calendar_links_push_renew_at"), table_name="calendar_links")
    op.drop_column("calendar_links", "push_failures")
    op.drop_column("calendar_links", "push_renew_at")
