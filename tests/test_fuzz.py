"""Fuzzing the HTTP API from its own OpenAPI with schemathesis, against the real stack.

Once per module: a fresh database, the REAL Better Auth issuer on it (tests/better_auth: its
migration, its /api/auth/jwks), our Alembic migration, two signed-up users A and B with real
JWTs, and the backend as a real uvicorn process on a free loopback port, which fetches the
issuer's keys like in production. Then four bounded, derandomized runs over the spec the
server serves, every response checked by schemathesis (no 5xx, documented status code,
response body and content type as documented) and by the run's own expectations:

- owner:     A's token; `user_id` is `me` or A's id, `task_id` mostly a task A owns (made just
             before the call), else B's task or a random UUID. Tasks in answers are A's only.
- stranger:  A's token; `user_id` random or B's id: every answer is the one "not found" 404.
- anonymous: no token: every /api answer is a 401 with `WWW-Authenticate: Bearer`.
- garbage:   a token that is no JWT: every /api answer is a 401, `error="invalid_token"`.

Two answers come before auth and ownership, in every run: 405 to a method the path does not
declare (schemathesis' coverage probes), and FastAPI's 422 to a body that is no JSON.

Hooks choose the path parameters from the generated values (crc32), so the choice is as
reproducible as the cases themselves; the real ids replace placeholders just before a call.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import settings
from schemathesis import APIOperation, BaseSchema, Case, HookContext, Response
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.config import Settings
from backend.errors import INVALID_TOKEN, MISSING_CREDENTIALS
from backend.main import create_app
from backend.tasks.router import TASK_NOT_FOUND
from devtools.migrate import migrate_backend
from devtools.pgcluster import create_database, drop_database
from devtools.servers import free_port, stop, wait_until_up
from tests.better_auth.harness import fetch_jwt, run_issuer, sign_up

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 30.0
UVICORN = [sys.executable, "-m", "uvicorn", "backend.main:app", "--no-access-log"]
NOT_FOUND_BODY = b'{"detail":"' + TASK_NOT_FOUND.encode() + b'"}'

# What create_app() serves at /openapi.json: the `stack` fixture checks that the running server
# serves exactly this. (Loading it from the server through schemathesis.pytest.from_fixture
# would fit better, but schemathesis 4.32 reads `Function._nodeid`, gone in pytest 9.2.)
SPEC: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()


# What the hooks and tests get (schemathesis' own alias, OpenApiCase, exists for type checkers
# only, and hypothesis may read these annotations at run time).
ApiCase = Case[APIOperation[Any, Any, Any, Any]]

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]

# (run, "METHOD /path", status) of every call: lets the last test check that the owner run
# really reached the handlers, rather than 404 or 422 at the door.
OUTCOMES: Counter[tuple[str, str, int]] = Counter()


def fuzz_settings(max_examples: int) -> settings:
    """Bounded and reproducible: the same cases on every run and every machine."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None)


TestFunction = TypeVar("TestFunction", bound=Callable[..., None])


def parametrize(schema: BaseSchema) -> Callable[[TestFunction], TestFunction]:
    """`@schema.parametrize()`, typed (schemathesis declares it as a bare Callable)."""
    decorator: Callable[[TestFunction], TestFunction] = schema.parametrize()
    return decorator


# ------------------------------------------------------------- path parameters, by hook
# Path parameter values are URL-encoded once generated, so placeholders are URL-safe.

OWN_ID = "placeholder-own-user-id"
OTHER_ID = "placeholder-other-user-id"
OWN_TASK = "placeholder-fresh-own-task"
OTHER_TASK = "placeholder-task-of-other-user"


def _bucket(name: str, case: ApiCase) -> int:
    """0-99 from what was generated for `case`: a stable pick per case, spread over cases."""
    body = case.body if isinstance(case.body, (dict, list, str, bytes, int, float)) else None
    key = f"{name}|{case.method}|{case.path_parameters!r}|{case.query!r}|{body!r}"
    return zlib.crc32(key.encode()) % 100


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _task_id(case: ApiCase, own_share: int) -> object:
    """Mostly a task of the caller, else the other user's task, else the generated UUID.
    A value that is no UUID (a negative case) stays as it is, for its 422."""
    value = case.path_parameters["task_id"]
    if not _is_uuid(value):
        return value
    bucket = _bucket("task_id", case)
    if bucket < own_share:
        return OWN_TASK
    if bucket < (own_share + 100) // 2:
        return OTHER_TASK
    return value


def as_owner(context: HookContext, case: ApiCase) -> ApiCase:
    """`user_id`: `me` (75 %) or the caller's id; `task_id`: 60 % a task of the caller."""
    params = dict(case.path_parameters)
    if "user_id" in params:
        params["user_id"] = OWN_ID if _bucket("user_id", case) < 25 else "me"
    if "task_id" in params:
        params["task_id"] = _task_id(case, own_share=60)
    case.path_parameters = params
    return case


def as_stranger(context: HookContext, case: ApiCase) -> ApiCase:
    """`user_id`: the other user's id (30 %) or random; `task_id`: 50 % a task of the caller."""
    params = dict(case.path_parameters)
    if _bucket("user_id", case) < 30:
        params["user_id"] = OTHER_ID
    if "task_id" in params:
        params["task_id"] = _task_id(case, own_share=50)
    case.path_parameters = params
    return case


def api(*, path_regex: str | None = None, hook: Callable[..., ApiCase] | None = None) -> BaseSchema:
    # A schema object per run: hooks registered on a schema are shared with its clones.
    schema: BaseSchema = schemathesis.openapi.from_dict(SPEC)
    if path_regex is not None:
        schema = schema.include(path_regex=path_regex)
    if hook is not None:
        schema.hook("map_case")(hook)
    return schema


owner_api = api(hook=as_owner)
stranger_api = api(path_regex=r"^/api/\{user_id\}/", hook=as_stranger)
protected_api = api(path_regex=r"^/api/")


# ------------------------------------------------------------------------------ the stack


@dataclass
class Stack:
    base_url: str
    http: httpx.Client
    user_a: str
    user_b: str
    token_a: str
    task_b: str

    @property
    def bearer_a(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_a}"}

    def new_task(self) -> str:
        """A fresh task of A's: DELETE and PUT in one case never take another's target."""
        response = self.http.post("/api/me/tasks", json={"title": "target"}, headers=self.bearer_a)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def resolve(self, case: ApiCase) -> None:
        ids = {OWN_ID: self.user_a, OTHER_ID: self.user_b, OTHER_TASK: self.task_b}
        params = dict(case.path_parameters)
        for name, value in params.items():
            if value == OWN_TASK:
                params[name] = self.new_task()
            elif isinstance(value, str) and value in ids:
                params[name] = ids[value]
        case.path_parameters = params


def _backend_env(database_url: str, issuer_url: str) -> dict[str, str]:
    """The caller's environment without any backend setting, then the run's own."""
    names = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key.upper() not in names}
    env.update(DATABASE_URL=database_url, BETTER_AUTH_URL=issuer_url, LOG_FORMAT="text")
    return env


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[Stack]:
    name = f"test_fuzz_{secrets.token_hex(4)}"
    database_url = create_database(postgres_server_url, name)
    try:
        # `sid` in the tokens, as the frontend adds it: the backend runs with its defaults.
        with (
            run_issuer(database_url, sid=True) as issuer_url,
            tempfile.TemporaryDirectory() as workdir,
        ):
            migrate_backend(database_url)
            password = "fuzz pass-word 1234"
            a = sign_up(issuer_url, email="a@example.com", password=password, name="A")
            b = sign_up(issuer_url, email="b@example.com", password=password, name="B")
            token_a, token_b = fetch_jwt(issuer_url, a), fetch_jwt(issuer_url, b)
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            log = Path(workdir) / "backend.log"
            with log.open("wb") as log_file:
                # An empty working directory: no developer's .env reaches the backend.
                process = subprocess.Popen(
                    [*UVICORN, "--app-dir", str(ROOT), "--host", "127.0.0.1", "--port", str(port)],
                    cwd=workdir,
                    env=_backend_env(database_url, issuer_url),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            try:
                wait_until_up(f"{base_url}/ready", process, timeout_s=READY_TIMEOUT_S, log=log)
                with httpx.Client(base_url=base_url, timeout=10) as http:
                    served = http.get("/openapi.json").json()
                    assert served == SPEC, "the server serves another spec than the fuzzed one"
                    task_b = http.post(
                        "/api/me/tasks",
                        json={"title": "B's own task"},
                        headers={"Authorization": f"Bearer {token_b}"},
                    )
                    assert task_b.status_code == 201, task_b.text
                    yield Stack(
                        base_url=base_url,
                        http=http,
                        user_a=a.user["id"],
                        user_b=b.user["id"],
                        token_a=token_a,
                        task_b=task_b.json()["id"],
                    )
            finally:
                stop(process)
    finally:
        drop_database(postgres_server_url, name)


# ------------------------------------------------------------------------------ the runs


def call(run: str, case: ApiCase, stack: Stack, headers: dict[str, str]) -> Response:
    """Send `case` to the server and run the checks."""
    stack.resolve(case)
    response = case.call(base_url=stack.base_url, headers=headers)
    OUTCOMES[run, f"{case.method} {case.operation.path}", response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=headers)
    return response


def is_method_probe(case: ApiCase) -> bool:
    """A coverage case sending a method the path does not declare (answered 405)."""
    return case.method.upper() != case.operation.method.upper()


def is_unparsable_body(response: Response) -> bool:
    """FastAPI parses a JSON body before any dependency runs, auth included: a body that is
    no JSON is a 422 whoever sends it."""
    if response.status_code != 422:
        return False
    errors = response.json()["detail"]
    return isinstance(errors, list) and [error["type"] for error in errors] == ["json_invalid"]


@parametrize(owner_api)
@fuzz_settings(max_examples=40)
def test_owner(case: ApiCase, stack: Stack) -> None:
    response = call("owner", case, stack, stack.bearer_a)
    if response.status_code not in (200, 201):
        return
    body = response.json()
    tasks = body if isinstance(body, list) else [body]
    assert all(task.get("user_id", stack.user_a) == stack.user_a for task in tasks), body


@parametrize(stranger_api)
@fuzz_settings(max_examples=25)
def test_stranger(case: ApiCase, stack: Stack) -> None:
    response = call("stranger", case, stack, stack.bearer_a)
    if is_method_probe(case) or is_unparsable_body(response):
        return
    if case.path_parameters["user_id"] in ("me", stack.user_a):
        return  # generated by chance: the caller after all
    assert response.status_code == 404, response.content
    assert response.content == NOT_FOUND_BODY


@parametrize(protected_api)
@fuzz_settings(max_examples=15)
def test_anonymous(case: ApiCase, stack: Stack) -> None:
    response = call("anonymous", case, stack, {})
    if is_method_probe(case) or is_unparsable_body(response):
        return
    assert response.status_code == 401, response.content
    assert response.headers["www-authenticate"] == ["Bearer"]
    assert response.json() == {"detail": MISSING_CREDENTIALS}


@parametrize(protected_api)
@fuzz_settings(max_examples=15)
def test_garbage_token(case: ApiCase, stack: Stack) -> None:
    response = call("garbage", case, stack, {"Authorization": "Bearer not-a.jwt-at.all"})
    if is_method_probe(case) or is_unparsable_body(response):
        return
    assert response.status_code == 401, response.content
    assert response.headers["www-authenticate"] == ['Bearer error="invalid_token"']
    assert response.json() == {"detail": INVALID_TOKEN}


def test_owner_run_reached_every_handler() -> None:
    """Each operation answered with success at least once: the hooks got requests past the
    ownership check, so the fuzzing reached the handlers and the database."""
    owner = {(operation, status) for run, operation, status in OUTCOMES if run == "owner"}
    if not owner:
        pytest.skip("test_owner did not run in this session")
    expected = {
        f"{method.upper()} {path}" for path, methods in SPEC["paths"].items() for method in methods
    }
    succeeded = {operation for operation, status in owner if 200 <= status < 300}
    assert succeeded == expected


# ------------------------------------------- inputs the fuzzing once found giving a 500
# Each request on a connection of its own: uvicorn closes the connection of a 500.


def test_nul_in_title_is_422(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.base_url}/api/me/tasks", json={"title": "a\x00b"}, headers=stack.bearer_a
    )
    assert response.status_code == 422, response.text


def test_nul_in_search_is_422(stack: Stack) -> None:
    response = httpx.get(
        f"{stack.base_url}/api/me/tasks", params={"q": "a\x00b"}, headers=stack.bearer_a
    )
    assert response.status_code == 422, response.text


def test_lone_surrogate_in_description_is_422(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.base_url}/api/me/tasks",
        content=b'{"title": "t", "description": "\\ud800"}',
        headers={**stack.bearer_a, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


def test_body_not_utf8_is_422(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.base_url}/api/me/tasks",
        content=b'{"title": "\xff"}',
        headers={**stack.bearer_a, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


def test_413_is_documented() -> None:
    undocumented = [
        f"{method.upper()} {path}"
        for path, methods in SPEC["paths"].items()
        for method, operation in methods.items()
        if "requestBody" in operation and "413" not in operation["responses"]
    ]
    assert undocumented == []
