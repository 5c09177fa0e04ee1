"""The "task" table, owned by the backend (migrated by Alembic, backend/migrations)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from backend.db import metadata
from backend.users import user_table

TITLE_MAX = 200
DESCRIPTION_MAX = 1000


class Base(DeclarativeBase):
    metadata = metadata


class Task(Base):
    __tablename__ = "task"

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[str] = mapped_column(
        Text, ForeignKey(user_table.c.id, ondelete="CASCADE"), nullable=False
    )
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        # The database enforces what the API validates: no bad row from any other writer.
        CheckConstraint(f"char_length(title) between 1 and {TITLE_MAX}", name="title_length"),
        CheckConstraint(
            f"description is null or char_length(description) <= {DESCRIPTION_MAX}",
            name="description_length",
        ),
        # A user's list, in each order the API offers, is an index range scan: fast at 100k
        # tasks per user. `id` breaks ties so pages are stable.
        Index("task_user_id_created_at_idx", "user_id", "created_at", "id"),
        Index("task_user_id_updated_at_idx", "user_id", "updated_at", "id"),
        Index("task_user_id_title_idx", "user_id", "title", "id"),
        Index("task_user_id_completed_created_at_idx", "user_id", "completed", "created_at", "id"),
    )


class TaskCount(Base):
    """How many tasks each user has, and how many are completed. Maintained by a trigger
    (migration 0002), never written by the application."""

    __tablename__ = "task_count"

    user_id: Mapped[str] = mapped_column(
        Text, ForeignKey(user_table.c.id, ondelete="CASCADE"), primary_key=True
    )
    total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    completed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
