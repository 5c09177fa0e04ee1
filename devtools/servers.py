"""The servers the tooling starts (make dev, the tests, the benchmarks): a free loopback port,
a minimal environment, waiting until one answers, and stopping it by its own pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    """A port nothing listens on at this moment, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def minimal_env(extra: Mapping[str, str] = {}) -> dict[str, str]:
    """PATH, HOME, LANG and TMPDIR from ours, then `extra`: no stray setting of the caller's
    (DATABASE_URL, BETTER_AUTH_*...) reaches the server."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


def wait_until_up(
    url: str,
    process: subprocess.Popen[bytes],
    *,
    timeout_s: float,
    log: Path | None = None,
    ready: Callable[[int], bool] = lambda status: status == 200,
) -> None:
    """Poll `url` until its status is `ready`; RuntimeError (with the tail of `log`) when the
    process exits first or the time runs out."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}{_tail(log)}")
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            if ready(response.status_code):
                return
            last = f"{response.status_code} {response.text[:200]}"
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {timeout_s:.0f} s ({last}){_tail(log)}")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it takes longer than `timeout_s`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: Path | None) -> str:
    if log is None:
        return ""
    with contextlib.suppress(OSError):
        return f"; its log ({log}):\n{log.read_text(errors='replace')[-3000:]}"
    return f"; no log at {log}"
