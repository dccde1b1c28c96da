"""connect sessions: links to the hosted connect page

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.db.rls import disable_tenant_rls, enable_tenant_rls

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connect_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('providers', JSON, nullable=False),
    sa.Column('return_url', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_connect_sessions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connect_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_connect_sessions_token_hash'))
    )
    with op.batch_alter_table('connect_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_connect_sessions_tenant_id', ['tenant_id'], unique=False)
    enable_tenant_rls('connect_sessions')


def downgrade() -> None:
    disable_tenant_rls('connect_sessions')
    with op.batch_alter_table('connect_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_connect_sessions_tenant_id')
    op.drop_table('connect_sessions')
