"""The task endpoints. Thin: ownership is decided by the OwnedTask dependency, so no route
can forget it, and every answer about a task that is not yours is the same 404 as a task
that does not exist."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from backend.db import SessionDep
from backend.errors import AUTH_RESPONSES, BODY_RESPONSES, NOT_FOUND_RESPONSE, NotFound
from backend.tasks import service
from backend.tasks.models import Task
from backend.tasks.schemas import (
    SearchText,
    SortField,
    SortOrder,
    StatusFilter,
    TaskCompletion,
    TaskCreate,
    TaskRead,
    TaskUpdate,
)
from backend.users import CurrentUser, User

TASK_NOT_FOUND = "Task not found"

router = APIRouter(
    prefix="/api/{user_id}/tasks",
    tags=["tasks"],
    responses={**AUTH_RESPONSES, **NOT_FOUND_RESPONSE},
)


def get_owner(user_id: str, user: CurrentUser) -> User:
    """The path's user: the caller's own id, or `me`. Anyone else's id looks exactly like a
    missing task, so the API never confirms that another user exists."""
    if user_id not in ("me", user.id):
        raise NotFound(TASK_NOT_FOUND)
    return user


Owner = Annotated[User, Depends(get_owner)]


async def get_owned_task(task_id: uuid.UUID, owner: Owner, session: SessionDep) -> Task:
    task = await service.get_task(session, owner.id, task_id)
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


OwnedTask = Annotated[Task, Depends(get_owned_task)]


@router.get("", response_model=list[TaskRead])
async def list_tasks(
    owner: Owner,
    session: SessionDep,
    response: Response,
    status_: Annotated[StatusFilter, Query(alias="status")] = "all",
    q: Annotated[
        SearchText | None, Query(max_length=200, description="Search title and description")
    ] = None,
    sort: SortField = "created_at",
    order: SortOrder = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[Task]:
    """The user's tasks, filtered, searched, sorted and paginated. X-Total-Count: all matches."""
    query = service.TaskQuery(
        status=status_, q=q, sort=sort, order=order, limit=limit, offset=offset
    )
    tasks, total = await service.list_tasks(session, owner.id, query)
    response.headers["X-Total-Count"] = str(total)
    return list(tasks)


@router.post(
    "", response_model=TaskRead, status_code=status.HTTP_201_CREATED, responses=BODY_RESPONSES
)
async def create_task(
    data: TaskCreate, owner: Owner, session: SessionDep, response: Response
) -> Task:
    task = await service.create_task(session, owner.id, data)
    response.headers["Location"] = f"/api/{owner.id}/tasks/{task.id}"
    return task


@router.get("/{task_id}", response_model=TaskRead)
async def read_task(task: OwnedTask) -> Task:
    return task


@router.put("/{task_id}", response_model=TaskRead, responses=BODY_RESPONSES)
async def update_task(task: OwnedTask, data: TaskUpdate, session: SessionDep) -> Task:
    return await service.update_task(session, task, data)


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(task: OwnedTask, session: SessionDep) -> None:
    await service.delete_task(session, task)


@router.patch("/{task_id}/complete", response_model=TaskRead, responses=BODY_RESPONSES)
async def complete_task(
    task: OwnedTask, session: SessionDep, data: TaskCompletion | None = None
) -> Task:
    """Set `completed` from the body, or toggle it when there is no body (or no field)."""
    return await service.set_completed(session, task, data.completed if data else None)
