"""Task queries. Every function takes the owner's id and filters on it: there is no query
here that could reach another user's rows. Nothing here commits (backend.db does)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.tasks.models import Task, TaskCount
from backend.tasks.schemas import SortField, SortOrder, StatusFilter, TaskCreate, TaskUpdate

_SORT_COLUMNS = {"created_at": Task.created_at, "updated_at": Task.updated_at, "title": Task.title}


@dataclass(frozen=True)
class TaskQuery:
    status: StatusFilter = "all"
    q: str | None = None
    sort: SortField = "created_at"
    order: SortOrder = "desc"
    limit: int = 50
    offset: int = 0


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(user_id: str, query: TaskQuery) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [Task.user_id == user_id]
    if query.status != "all":
        conditions.append(Task.completed.is_(query.status == "completed"))
    if query.q:
        pattern = f"%{_escape_like(query.q)}%"
        conditions.append(
            or_(
                Task.title.ilike(pattern, escape="\\"),
                Task.description.ilike(pattern, escape="\\"),
            )
        )
    return and_(*conditions)


async def list_tasks(
    session: AsyncSession, user_id: str, query: TaskQuery
) -> tuple[Sequence[Task], int]:
    """One page of the user's tasks, and how many match in all (for X-Total-Count)."""
    where = _filters(user_id, query)
    column = _SORT_COLUMNS[query.sort]
    ordering = (
        (column.asc(), Task.id.asc()) if query.order == "asc" else (column.desc(), Task.id.desc())
    )
    page: Select[Task] = (
        select(Task).where(where).order_by(*ordering).limit(query.limit).offset(query.offset)
    )
    tasks = (await session.scalars(page)).all()
    if query.offset == 0 and len(tasks) < query.limit:
        total = len(tasks)  # the page holds every match: no need to count again
    elif query.q is None:
        total = await _counted(session, user_id, query.status)
    else:
        total = await session.scalar(select(func.count()).select_from(Task).where(where)) or 0
    return tasks, total


async def _counted(session: AsyncSession, user_id: str, status: StatusFilter) -> int:
    """The user's count from task_count (one row, kept by a trigger) instead of a scan."""
    row = (
        await session.execute(
            select(TaskCount.total, TaskCount.completed).where(TaskCount.user_id == user_id)
        )
    ).one_or_none()
    total, completed = row if row is not None else (0, 0)
    return {"all": total, "completed": completed, "pending": total - completed}[status]


async def get_task(session: AsyncSession, user_id: str, task_id: uuid.UUID) -> Task | None:
    return await session.scalar(select(Task).where(Task.id == task_id, Task.user_id == user_id))


async def create_task(session: AsyncSession, user_id: str, data: TaskCreate) -> Task:
    # One round trip: the row comes back with its server defaults (id, timestamps).
    statement = (
        insert(Task)
        .values(user_id=user_id, title=data.title, description=data.description)
        .returning(Task)
    )
    return (await session.scalars(statement)).one()


async def update_task(session: AsyncSession, task: Task, data: TaskUpdate) -> Task:
    values: dict[str, object] = {"title": data.title, "description": data.description}
    if data.completed is not None:
        values["completed"] = data.completed
    return await _update(session, task, values)


async def set_completed(session: AsyncSession, task: Task, completed: bool | None) -> Task:
    """Set `completed`, or toggle it when None, in one statement (no lost toggle when two
    requests race)."""
    value = ~Task.completed if completed is None else completed
    return await _update(session, task, {"completed": value})


async def _update(session: AsyncSession, task: Task, values: dict[str, object]) -> Task:
    statement = (
        update(Task)
        .where(Task.id == task.id, Task.user_id == task.user_id)
        .values(**values, updated_at=func.now())
        .returning(Task)
        # the caller's Task object is refreshed from the returned row, not left stale
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.scalars(statement)).one()


async def delete_task(session: AsyncSession, task: Task) -> None:
    await session.execute(delete(Task).where(Task.id == task.id, Task.user_id == task.user_id))
