"""Create the task table.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # "user" is Better Auth's table: its migration must have run before this one.
    op.create_table(
        "task",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("completed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "char_length(title) between 1 and 200", name=op.f("task_title_length_check")
        ),
        sa.CheckConstraint(
            "description is null or char_length(description) <= 1000",
            name=op.f("task_description_length_check"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("task_user_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("task_pkey")),
    )
    op.create_index("task_user_id_created_at_idx", "task", ["user_id", "created_at", "id"])
    op.create_index("task_user_id_updated_at_idx", "task", ["user_id", "updated_at", "id"])
    op.create_index("task_user_id_title_idx", "task", ["user_id", "title", "id"])
    op.create_index(
        "task_user_id_completed_created_at_idx",
        "task",
        ["user_id", "completed", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_table("task")
