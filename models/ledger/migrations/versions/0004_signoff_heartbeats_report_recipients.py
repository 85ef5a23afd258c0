"""the departments' sign-off of the monthly report, flow-run heartbeats, where a report was sent

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

import models.ledger.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flow_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flow', sa.String(length=60), nullable=False),
    sa.Column('scope', sa.String(length=60), nullable=False),
    sa.Column('window_end', models.ledger.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', models.ledger.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', models.ledger.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('prefect_run_id', sa.String(length=64), nullable=True),
    sa.Column('worker', sa.String(length=120), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.CheckConstraint("result IN ('running', 'completed', 'failed', 'crashed')", name=op.f('ck_flow_runs_result')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_runs'))
    )
    with op.batch_alter_table('flow_runs', schema=None) as batch_op:
        batch_op.create_index('ix_flow_runs_flow_started_at', ['flow', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_flow_runs_prefect_run_id'), ['prefect_run_id'], unique=False)

    op.create_table('signoff_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('party', sa.String(length=16), nullable=False),
    sa.Column('answer', sa.String(length=10), nullable=False),
    sa.Column('by_ref', sa.String(length=100), nullable=False),
    sa.Column('by_name', sa.String(length=100), nullable=False),
    sa.Column('by_role', sa.String(length=40), nullable=False),
    sa.Column('at', models.ledger.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', models.ledger.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('order_number', sa.String(length=40), nullable=True),
    sa.CheckConstraint("answer IN ('confirm', 'dispute')", name=op.f('ck_signoff_answers_answer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signoff_answers'))
    )
    with op.batch_alter_table('signoff_answers', schema=None) as batch_op:
        batch_op.create_index('ix_signoff_answers_month_party', ['month', 'party'], unique=False)

    op.create_table('signoff_views',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('party', sa.String(length=16), nullable=False),
    sa.Column('view_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', models.ledger.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signoff_views')),
    sa.UniqueConstraint('month', 'version', 'party', name='uq_signoff_views_month_version_party')
    )
    op.create_table('signoffs',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('opened_at', models.ledger.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', models.ledger.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('final_version', sa.Integer(), nullable=True),
    sa.Column('final_sent_at', models.ledger.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('final_marks', sa.JSON(), nullable=False),
    sa.CheckConstraint("state IN ('awaiting-signoff', 'sent')", name=op.f('ck_signoffs_state')),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_signoffs'))
    )
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_to', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.drop_column('sent_to')

    op.drop_table('signoffs')
    op.drop_table('signoff_views')
    with op.batch_alter_table('signoff_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_signoff_answers_month_party')

    op.drop_table('signoff_answers')
    with op.batch_alter_table('flow_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flow_runs_prefect_run_id'))
        batch_op.drop_index('ix_flow_runs_flow_started_at')

    op.drop_table('flow_runs')
