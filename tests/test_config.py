"""Settings: the URL forms we accept, the derived defaults, and the values we refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from backend import config
from backend.config import Settings
from devtools import dev

ROOT = Path(__file__).resolve().parent.parent


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


class TestDatabaseURL:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgres://u:p@host/db", "postgresql+psycopg://u:p@host/db"),
            ("postgresql://u:p@host/db", "postgresql+psycopg://u:p@host/db"),
            ("postgresql+psycopg://u:p@host/db", "postgresql+psycopg://u:p@host/db"),
            (
                "postgresql://u:p@ep-x-pooler.eu.aws.neon.tech/db?sslmode=require&channel_binding=require",
                "postgresql+psycopg://u:p@ep-x-pooler.eu.aws.neon.tech/db?sslmode=require&channel_binding=require",
            ),
        ],
    )
    def test_accepted_forms(self, given: str, expected: str) -> None:
        assert make(database_url=given).database_url == expected

    @pytest.mark.parametrize("given", ["mysql://u@host/db", "host/db", "sqlite:///x.db"])
    def test_refused_forms(self, given: str) -> None:
        with pytest.raises(ValidationError, match=r"DATABASE_URL|PostgreSQL"):
            make(database_url=given)


class TestDefaultDatabaseURL:
    """Unset DATABASE_URL: the cluster `make dev` runs (it writes its URL to .data/), else the
    local server on the standard port."""

    @pytest.fixture
    def url_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        path = tmp_path / "database-url"
        monkeypatch.setattr(config, "DEV_DATABASE_URL_FILE", path)
        return path

    def test_make_dev_is_not_running(self, url_file: Path) -> None:
        assert make().database_url == "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

    def test_the_running_make_dev_cluster(self, url_file: Path) -> None:
        url_file.write_text("postgresql://postgres@127.0.0.1:40123/postgres\n")
        assert make().database_url == "postgresql+psycopg://postgres@127.0.0.1:40123/postgres"

    def test_the_environment_wins(self, url_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        url_file.write_text("postgresql://postgres@127.0.0.1:40123/postgres\n")
        monkeypatch.setenv("DATABASE_URL", "postgres://app@db.example.com/tasks")
        assert make().database_url == "postgresql+psycopg://app@db.example.com/tasks"

    def test_a_garbled_file_is_refused(self, url_file: Path) -> None:
        url_file.write_text("not a url\n")
        with pytest.raises(ValidationError, match="DATABASE_URL"):
            make()

    def test_the_file_is_where_make_dev_writes_it(self) -> None:
        assert config.DEV_DATABASE_URL_FILE == ROOT / ".data" / "database-url"
        assert config.DEV_DATABASE_URL_FILE.parent == dev.DATA


class TestDerivedDefaults:
    def test_everything_follows_better_auth_url(self) -> None:
        settings = make(better_auth_url="https://app.example.com/")
        assert settings.issuer == "https://app.example.com"
        assert settings.audiences == ("https://app.example.com",)
        assert settings.jwks_url == "https://app.example.com/api/auth/jwks"
        assert settings.origins == ("https://app.example.com",)

    def test_internal_jwks_url_keeps_public_issuer(self) -> None:
        settings = make(
            better_auth_url="https://app.example.com",
            better_auth_jwks_url="http://frontend:3000/api/auth/jwks",
        )
        assert settings.jwks_url == "http://frontend:3000/api/auth/jwks"
        assert settings.issuer == "https://app.example.com"

    def test_comma_separated_lists(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BETTER_AUTH_AUDIENCE", "https://a.example, https://b.example")
        monkeypatch.setenv("ALLOWED_ORIGINS", "http://localhost:3000,http://127.0.0.1:3000")
        monkeypatch.setenv("AUTH_ALGORITHMS", "EdDSA,ES256")
        settings = make()
        assert settings.audiences == ("https://a.example", "https://b.example")
        assert settings.origins == ("http://localhost:3000", "http://127.0.0.1:3000")
        assert settings.auth_algorithms == ("EdDSA", "ES256")


class TestRefusedValues:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("auth_algorithms", "HS256"),
            ("auth_algorithms", "none"),
            ("auth_algorithms", ""),
            ("auth_leeway_s", 61),
            ("auth_leeway_s", -1),
            ("jwks_ttl_s", 10),
            ("jwks_cooldown_s", 0),
            ("auth_user_cache_ttl_s", 61),
            ("allowed_origins", "https://app.example.com/path"),
            ("better_auth_url", "ftp://example.com"),
            ("better_auth_jwks_url", "not a url"),
            ("log_level", "verbose"),
            ("max_body_bytes", 0),
        ],
    )
    def test_refused_with_the_setting_named(self, name: str, value: object) -> None:
        with pytest.raises(ValidationError) as excinfo:
            make(**{name: value})
        assert name in str(excinfo.value)

    def test_stale_window_shorter_than_ttl(self) -> None:
        with pytest.raises(ValidationError, match="JWKS_STALE_S"):
            make(jwks_ttl_s=600, jwks_stale_s=300)
