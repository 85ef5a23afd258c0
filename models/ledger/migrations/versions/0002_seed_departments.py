"""seed the five fixed departments

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEPARTMENTS = [
    {"code": "cs", "name_zh": "客服部", "name_en": "Customer service"},
    {"code": "engineering", "name_zh": "工程部", "name_en": "Engineering"},
    {"code": "cleaning", "name_zh": "保洁部(环境部)", "name_en": "Cleaning (environment)"},
    {"code": "finance", "name_zh": "财务部", "name_en": "Finance"},
    {"code": "administration", "name_zh": "行政部", "name_en": "Administration"},
]


def upgrade() -> None:
    table = sa.table("departments", sa.column("code", sa.String), sa.column("name_zh", sa.String),
                     sa.column("name_en", sa.String))
    op.bulk_insert(table, DEPARTMENTS)


def downgrade() -> None:
    op.execute("DELETE FROM departments")
