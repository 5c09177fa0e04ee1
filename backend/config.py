"""Every setting of the backend, from the environment (and an optional .env), checked at start.

A bad value stops the process with a message naming the setting, rather than surfacing later
as a confusing 401 or 500.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backend.auth import SUPPORTED_ALGORITHMS

CommaList = Annotated[tuple[str, ...], NoDecode]

# `make dev` writes its embedded cluster's URL here while the cluster runs (devtools/dev.py).
DEV_DATABASE_URL_FILE = Path(__file__).resolve().parent.parent / ".data" / "database-url"
# Without it: the conventional local server (127.0.0.1, port 5432, superuser postgres).
LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def default_database_url() -> str:
    """DATABASE_URL when it is unset: the cluster of a running `make dev`, else the local
    server. Read when Settings are built, so start the backend after `make dev`."""
    try:
        return DEV_DATABASE_URL_FILE.read_text().strip() or LOCAL_DATABASE_URL
    except OSError:  # no `make dev` running (or never run) in this checkout
        return LOCAL_DATABASE_URL


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, the form Better Auth uses for `iss`, `aud` and CORS."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}"


def sqlalchemy_url(url: str) -> str:
    """Accept the URL forms Neon, Heroku and psql print; SQLAlchemy wants its driver named.
    Query options (sslmode, channel_binding, ...) pass through untouched."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("DATABASE_URL must look like postgresql://user:password@host/db")
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not PostgreSQL (postgresql://...)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = Field(
        default_factory=default_database_url,
        description="PostgreSQL holding Better Auth's tables and ours",
    )
    better_auth_url: str = "http://localhost:3000"
    better_auth_jwks_url: str | None = None
    better_auth_issuer: str | None = None
    better_auth_audience: CommaList = ()
    # Better Auth's own secret: when set, its signed session cookie is a credential too.
    better_auth_secret: SecretStr | None = None
    allowed_origins: CommaList = ()

    auth_algorithms: CommaList = tuple(sorted(SUPPORTED_ALGORITHMS))
    auth_leeway_s: int = Field(default=30, ge=0, le=60)
    auth_max_token_lifetime_s: int = Field(default=86_400, ge=60, le=30 * 86_400)
    auth_max_token_bytes: int = Field(default=8 * 1024, ge=1024, le=64 * 1024)
    auth_token_cache_size: int = Field(default=10_000, ge=0, le=1_000_000)
    auth_user_cache_ttl_s: int = Field(default=30, ge=0, le=60)
    # Instant sign-out: a JWT must carry `sid` naming a live session row of its `sub`.
    auth_require_session: bool = True
    auth_session_cache_ttl_s: int = Field(default=5, ge=0, le=5)
    jwks_ttl_s: int = Field(default=300, ge=60, le=86_400)
    jwks_cooldown_s: int = Field(default=10, ge=1, le=300)
    jwks_stale_s: int = Field(default=86_400, ge=0, le=7 * 86_400)
    jwks_timeout_s: float = Field(default=5.0, gt=0, le=30)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    # Requests run at once per worker; the rest queue (backend/admission.py says why).
    max_concurrent_requests: int = Field(default=32, ge=1, le=10_000)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"

    @field_validator("better_auth_audience", "allowed_origins", "auth_algorithms", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("better_auth_secret", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return sqlalchemy_url(value)

    @field_validator("better_auth_url")
    @classmethod
    def _better_auth_url(cls, value: str) -> str:
        origin_of(value)
        return value.rstrip("/")

    @field_validator("better_auth_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        if value is not None:
            origin_of(value)
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin_of(origin) != origin:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return value

    @field_validator("auth_algorithms")
    @classmethod
    def _algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - SUPPORTED_ALGORITHMS
        if unknown or not value:
            raise ValueError(
                f"unsupported {sorted(unknown)}: choose from {sorted(SUPPORTED_ALGORITHMS)} "
                "(asymmetric only: HS* and none are never accepted)"
            )
        return value

    @model_validator(mode="after")
    def _stale_covers_ttl(self) -> Settings:
        if self.jwks_stale_s and self.jwks_stale_s < self.jwks_ttl_s:
            raise ValueError("JWKS_STALE_S must be 0 or at least JWKS_TTL_S")
        return self

    # -- derived values -------------------------------------------------------------------
    @cached_property
    def public_origin(self) -> str:
        return origin_of(self.better_auth_url)

    @cached_property
    def jwks_url(self) -> str:
        return self.better_auth_jwks_url or f"{self.public_origin}/api/auth/jwks"

    @cached_property
    def issuer(self) -> str:
        return self.better_auth_issuer or self.public_origin

    @cached_property
    def audiences(self) -> tuple[str, ...]:
        return self.better_auth_audience or (self.public_origin,)

    @cached_property
    def origins(self) -> tuple[str, ...]:
        return self.allowed_origins or (self.public_origin,)
