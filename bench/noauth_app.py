"""The same app with the auth dependency replaced by a fixed user: the no-auth baseline of
bench/http.py. Never deployed; `uvicorn bench.noauth_app:app` in the benchmark only."""

from __future__ import annotations

import os

from backend.main import create_app
from backend.users import User, get_current_user

BASELINE_USER = User(
    id=os.environ["BENCH_USER_ID"],
    email="baseline@example.com",
    name="Baseline",
    email_verified=False,
    image=None,
)


def fixed_user() -> User:
    return BASELINE_USER


app = create_app()
app.dependency_overrides[get_current_user] = fixed_user
