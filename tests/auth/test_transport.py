"""SECURITY_CASES 20-21: how the token travels. Only the Authorization header, scheme Bearer
(case-insensitive), exactly once; never the query string, never a cookie."""

from __future__ import annotations

from typing import Any

import pytest

from backend.auth import Reason
from tests.auth.support import Api
from tests.conftest import insert_user

ANONYMOUS = Reason.MISSING


class TestAuthorizationHeader:
    """SECURITY_CASES 20: no header, an empty Bearer, another scheme or two Authorization
    headers get 401; `bearer` in lower case works."""

    async def test_anonymous(self, api: Api) -> None:
        response = await api.refused(credential=False, reason=ANONYMOUS)
        assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer    ", "bearer"])
    async def test_bearer_with_nothing_after_it(self, api: Api, value: str) -> None:
        await api.refused(headers=[("Authorization", value)], reason=Reason.MALFORMED)

    @pytest.mark.parametrize("value", ["", " "])
    async def test_empty_header(self, api: Api, value: str) -> None:
        await api.refused(headers=[("Authorization", value)], credential=False, reason=ANONYMOUS)

    @pytest.mark.parametrize(
        "scheme", ["Basic", "Token", "JWT", "Bearer:", "Bearer-Token", "Digest", "DPoP"]
    )
    async def test_other_schemes(self, api: Api, user: dict[str, Any], scheme: str) -> None:
        """Even carrying a valid token, another scheme is no bearer credential."""
        token = api.issuer.mint(user)
        api.keep_secret(token)
        await api.refused(
            headers=[("Authorization", f"{scheme} {token}")], credential=False, reason=ANONYMOUS
        )

    async def test_basic_credentials(self, api: Api) -> None:
        await api.refused(
            headers=[("Authorization", "Basic YWRhOmNvcnJlY3QgaG9yc2UgYmF0dGVyeSBzdGFwbGU=")],
            credential=False,
            reason=ANONYMOUS,
        )

    async def test_token_without_a_scheme(self, api: Api, user: dict[str, Any]) -> None:
        token = api.issuer.mint(user)
        api.keep_secret(token)
        await api.refused(headers=[("Authorization", token)], credential=False, reason=ANONYMOUS)

    @pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr", "Bearer"])
    async def test_scheme_is_case_insensitive(
        self, api: Api, user: dict[str, Any], scheme: str
    ) -> None:
        token = api.issuer.mint(user)
        api.keep_secret(token)
        response = await api.me(headers=[("Authorization", f"{scheme} {token}")])
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user["id"]

    async def test_spaces_around_the_token(self, api: Api, user: dict[str, Any]) -> None:
        token = api.issuer.mint(user)
        api.keep_secret(token)
        response = await api.me(headers=[("Authorization", f"Bearer   {token}  ")])
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            pytest.param("valid", "valid", id="same-token-twice"),
            pytest.param("valid", "other-user", id="two-users"),
            pytest.param("valid", "garbage", id="valid-then-garbage"),
            pytest.param("garbage", "valid", id="garbage-then-valid"),
            pytest.param("valid", "basic", id="valid-then-basic"),
            pytest.param("basic", "valid", id="basic-then-valid"),
        ],
    )
    async def test_two_authorization_headers(
        self,
        api: Api,
        user: dict[str, Any],
        better_auth_database: str,
        first: str,
        second: str,
    ) -> None:
        """Which one a proxy would keep is anybody's guess: refuse both."""
        other = api.issuer.user()
        insert_user(better_auth_database, other)
        valid, others = api.issuer.mint(user), api.issuer.mint(other)
        api.keep_secret(valid, others)
        values = {
            "valid": f"Bearer {valid}",
            "other-user": f"Bearer {others}",
            "garbage": "Bearer x.y.z",
            "basic": "Basic YWRhOnB3",
        }
        headers = [("Authorization", values[first]), ("Authorization", values[second])]
        await api.refused(headers=headers, reason=Reason.MALFORMED)
        await api.accepted(valid, user=user)  # alone, the same token is fine

    async def test_two_tokens_in_one_header(self, api: Api, user: dict[str, Any]) -> None:
        token = api.issuer.mint(user)
        api.keep_secret(token)
        await api.refused(
            headers=[("Authorization", f"Bearer {token}, Bearer {token}")],
            reason=Reason.MALFORMED,
        )


QUERY_PARAMETERS = ["token", "access_token", "jwt", "id_token", "authorization", "bearer"]
COOKIES = [
    "token",
    "access_token",
    "jwt",
    "Authorization",
    "better-auth.session_token",
    "__Secure-better-auth.session_token",
    "better-auth.session_data",
]


class TestCredentialsElsewhere:
    """SECURITY_CASES 21: a valid token in the query string or a cookie is ignored: the
    request is anonymous (401), and the token is not logged."""

    async def test_anonymous(self, api: Api) -> None:
        await api.refused(credential=False, reason=ANONYMOUS)

    @pytest.mark.parametrize("name", QUERY_PARAMETERS)
    async def test_token_in_the_query_string(
        self, api: Api, user: dict[str, Any], name: str
    ) -> None:
        token = api.issuer.mint(user)
        api.keep_secret(token)
        await api.refused(params={name: token}, credential=False, reason=ANONYMOUS)
        await api.accepted(token, user=user)  # control: the token itself is good

    @pytest.mark.parametrize("name", COOKIES)
    async def test_token_in_a_cookie(self, api: Api, user: dict[str, Any], name: str) -> None:
        token = api.issuer.mint(user)
        api.keep_secret(token)
        await api.refused(
            headers=[("Cookie", f"{name}={token}")], credential=False, reason=ANONYMOUS
        )
        await api.accepted(token, user=user)

    async def test_token_in_a_cookie_besides_a_bad_bearer(
        self, api: Api, user: dict[str, Any]
    ) -> None:
        """A good token elsewhere does not rescue a bad Authorization header."""
        token = api.issuer.mint(user)
        api.keep_secret(token)
        await api.refused(
            headers=[("Authorization", "Bearer x.y.z"), ("Cookie", f"token={token}")],
            params={"access_token": token},
            reason=Reason.MALFORMED,
        )

    async def test_token_in_another_header(self, api: Api, user: dict[str, Any]) -> None:
        token = api.issuer.mint(user)
        api.keep_secret(token)
        for name in (
            "X-Auth-Token",
            "X-Access-Token",
            "Proxy-Authorization",
            "X-Forwarded-Authorization",
        ):
            await api.refused(
                headers=[(name, f"Bearer {token}")], credential=False, reason=ANONYMOUS
            )
