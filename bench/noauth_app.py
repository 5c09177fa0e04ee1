"""The same app with the auth dependency replaced by a fixed user: the no-auth baseline of
bench/http.py. Never deployed; `uvicorn bench.noauth_app:app` in the benchmark only.

Two ways of replacing it would make this baseline slower than the route it is the baseline of,
so neither is used:
- `app.dependency_overrides`: with any override set, FastAPI rebuilds every sub-dependency of
  the route (signature inspection included) on every request;
- a plain `def` replacement: FastAPI runs it in its threadpool, a thread hop per request.
Instead, the `Depends` in the CurrentUser alias is pointed at an `async def` before the task
routes are built (they are built when backend.tasks.router is imported), and the finished app
is checked to hold it. Everything else is the real route: get_owner, the session dependency,
the same query and response model. The fixed user is users[0] of the benchmark, with as many
tasks as every other user.
"""

from __future__ import annotations

import os
from typing import Any, get_args

from fastapi.params import Depends

from backend.users import CurrentUser, User, get_current_user

BASELINE_USER = User(
    id=os.environ["BENCH_USER_ID"],
    email="baseline@example.com",
    name="Baseline",
    email_verified=False,
    image=None,
)


async def fixed_user() -> User:
    return BASELINE_USER


(_depends,) = [m for m in get_args(CurrentUser)[1:] if isinstance(m, Depends)]
object.__setattr__(_depends, "dependency", fixed_user)  # a frozen dataclass

from backend.main import create_app  # noqa: E402  (after the swap: it imports the routes)


def _calls(routes: list[Any]) -> set[Any]:
    """Every dependency callable of the task-list route, however deeply nested."""
    found: set[Any] = set()

    def walk(dependant: Any) -> None:
        found.add(dependant.call)
        for sub in dependant.dependencies:
            walk(sub)

    for route in routes:
        if (router := getattr(route, "original_router", None)) is not None:
            found |= _calls(router.routes)
        elif getattr(route, "path", None) == "/api/{user_id}/tasks" and "GET" in route.methods:
            walk(route.dependant)
    return found


app = create_app()
_used = _calls(app.routes)
if fixed_user not in _used or get_current_user in _used or app.dependency_overrides:
    raise RuntimeError("the no-auth baseline did not replace get_current_user on the task list")
