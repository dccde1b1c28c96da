"""events: an index on occurred_at, for retention

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_events_occurred_at', 'events', ['occurred_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_events_occurred_at', table_name='events')
