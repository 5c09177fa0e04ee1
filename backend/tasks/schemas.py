"""What the task API accepts and returns. Validation lives here, so bad input is a 422
that names the field, before anything touches the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
)

from backend.tasks.models import DESCRIPTION_MAX, TITLE_MAX


def storable_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refuse it here, as a 422 naming the field, rather
    than as a 500 from the driver."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (U+0000) characters")
    return value


StorableText = AfterValidator(storable_text)
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    StorableText,
]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX), StorableText]
SearchText = Annotated[str, StorableText]

StatusFilter = Literal["all", "pending", "completed"]
SortField = Literal["created_at", "updated_at", "title"]
SortOrder = Literal["asc", "desc"]


class TaskCreate(BaseModel):
    # forbid: a body naming another user_id (or a typo'd field) is refused, never half-used;
    # strict: "yes" is not a boolean, 5 is not a title
    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title
    description: Description | None = None


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title
    description: Description | None = None
    completed: bool | None = Field(default=None, description="Unchanged when left out")


class TaskCompletion(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    completed: bool | None = Field(default=None, description="Left out: toggle")


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime

    @field_serializer("created_at", "updated_at")
    def _utc(self, value: datetime) -> str:
        # ISO 8601 in UTC with a Z, whatever the database session's TimeZone is.
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
