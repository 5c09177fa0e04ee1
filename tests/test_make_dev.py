"""`make dev` on a fresh clone, as a new user would run it: no DATABASE_URL, nothing installed
in the clone. It must install what it needs, start PostgreSQL, both migrations, the frontend
and the backend; survive a Ctrl-C and a second start with the data intact; and leave no
process behind."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.servers import free_port
from tests.e2e.stack import ARTIFACTS

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 900  # the first start installs the Python and npm dependencies
PASSWORD = "correct horse battery staple"


def processes_under(directory: Path) -> list[str]:
    """Processes whose working directory or command line is inside `directory`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmdline:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


class MakeDev:
    def __init__(self, clone: Path, frontend_port: int, backend_port: int) -> None:
        self.clone = clone
        self.frontend = f"http://127.0.0.1:{frontend_port}"
        self.public = f"http://localhost:{frontend_port}"
        self.backend = f"http://127.0.0.1:{backend_port}"
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(clone)),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "FRONTEND_PORT": str(frontend_port),
            "BACKEND_PORT": str(backend_port),
            "UV_PYTHON_DOWNLOADS": "never",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        ARTIFACTS.mkdir(exist_ok=True)
        log = (ARTIFACTS / f"make-dev-{self.runs}.log").open("wb")
        # Its own process group: SIGINT to the group is what Ctrl-C in a terminal does.
        self.process = subprocess.Popen(
            ["make", "dev"],
            cwd=self.clone,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_tail()
            try:
                if httpx.get(f"{self.backend}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        pytest.fail(f"make dev did not get ready:\n{self.log_tail()}")

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the whole group. make exits at once; what it started must all be
        gone (servers stopped, PostgreSQL shut down) within a bounded time."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not processes_under(self.clone):
                return
            time.sleep(0.5)
        pytest.fail(f"still running after SIGINT: {processes_under(self.clone)}\n{self.log_tail()}")

    def log_tail(self) -> str:
        return (ARTIFACTS / f"make-dev-{self.runs}.log").read_text(errors="replace")[-4000:]

    def sign_in_token(self, email: str, *, sign_up: bool) -> str:
        with httpx.Client(base_url=self.frontend, headers={"Origin": self.public}) as client:
            if sign_up:
                path, body = "/api/auth/sign-up/email", {"name": "Ada", "email": email}
            else:
                path, body = "/api/auth/sign-in/email", {"email": email}
            response = client.post(path, json={**body, "password": PASSWORD})
            assert response.status_code == 200, response.text
            token = client.get("/api/auth/token")
            assert token.status_code == 200, token.text
            jwt: str = token.json()["token"]
            return jwt


@pytest.fixture
def clone() -> Iterator[Path]:
    # Not under pytest's 0700 tmp: as root, the embedded PostgreSQL runs as another user,
    # who must reach the clone's .data/.
    workdir = Path(tempfile.mkdtemp(prefix="make-dev-"))
    workdir.chmod(0o755)
    target = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    try:
        yield target
    finally:
        leftover = processes_under(target)
        for line in leftover:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)
    assert leftover == [], "processes left behind"


def test_make_dev_from_a_fresh_clone(clone: Path) -> None:
    dev = MakeDev(clone, free_port(), free_port())
    email = f"ada-{secrets.token_hex(4)}@example.com"

    dev.start()
    token = dev.sign_in_token(email, sign_up=True)
    created = httpx.post(
        f"{dev.backend}/api/me/tasks",
        json={"title": "survives a restart"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    assert (clone / ".data" / "better-auth-secret").exists()
    dev.interrupt()

    dev.start()  # reuses .data/: the same database, the same secret
    token = dev.sign_in_token(email, sign_up=False)
    tasks = httpx.get(f"{dev.backend}/api/me/tasks", headers={"Authorization": f"Bearer {token}"})
    assert [task["title"] for task in tasks.json()] == ["survives a restart"]
    dev.interrupt()
