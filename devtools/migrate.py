"""Both migrations, in order: Better Auth's own (its tables), then ours (Alembic: "task").

`python -m devtools.migrate` migrates DATABASE_URL. Better Auth's migration is the frontend's
own (`npm run migrate`: the real package's `getMigrations` on frontend/lib/auth.ts), so its
tables never drift from what the app's Better Auth expects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from backend.config import sqlalchemy_url
from devtools.pgcluster import libpq_url

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"


def migrate_better_auth(database_url: str, *, secret: str | None = None) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("Node.js >= 20 (with npm) is required for Better Auth's migration")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **({"HOME": os.environ["HOME"]} if "HOME" in os.environ else {}),  # npm's cache
        "DATABASE_URL": libpq_url(database_url),
        # The migration touches no keys; any secret will do when none is given.
        "BETTER_AUTH_SECRET": secret or "migration-only-secret-0123456789abcdef",
        "BETTER_AUTH_URL": "http://localhost:3000",
    }
    result = subprocess.run(
        [npm, "run", "--silent", "migrate"],
        cwd=FRONTEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"Better Auth's migration failed:\n{result.stderr[-2000:]}")


def migrate_backend(database_url: str) -> None:
    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    alembic_command.upgrade(config, "head")


def migrate(database_url: str, *, secret: str | None = None) -> None:
    migrate_better_auth(database_url, secret=secret)
    migrate_backend(database_url)


if __name__ == "__main__":
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is not set")
    migrate(url, secret=os.environ.get("BETTER_AUTH_SECRET"))
