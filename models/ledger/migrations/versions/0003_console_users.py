"""the web console's users; a silence may name one alert

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

import models.ledger.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLES = ("cs-clerk", "cs-supervisor", "cs-manager", "finance-manager", "engineering-supervisor",
         "cleaning-supervisor", "administration", "admin")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("offices", sa.JSON(), nullable=False),
        sa.Column("staff_code", sa.String(length=32), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", models.ledger.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", models.ledger.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", models.ledger.tables.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("login", name=op.f("uq_users_login")),
    )
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alert_key", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.drop_column("alert_key")
    op.drop_table("users")
