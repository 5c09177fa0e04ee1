"""SECURITY_CASES 12-19: claims, users and foreign tokens.

Every token is signed by the issuer's real key (unless the case is about another key), so a
refusal is due to the claims alone. The clock is frozen: time boundaries are exact.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

import pytest

from backend.auth import Reason
from backend.auth.testing import OMIT, IssuerStub, better_auth_id, generate_key
from tests.auth.support import Api, forge_hmac
from tests.conftest import FrozenClock, delete_user, insert_user

LEEWAY_S = 30  # AUTH_LEEWAY_S default
LIFETIME_S = 900  # Better Auth's default expirationTime (15 min)
MAX_LIFETIME_S = 86_400  # AUTH_MAX_TOKEN_LIFETIME_S default
USER_CACHE_TTL_S = 30  # AUTH_USER_CACHE_TTL_S default
BETTER_AUTH_SECRET = b"test-secret-for-migrations-only-0123456789"


class TestExpiry:
    """SECURITY_CASES 12: exp past by more than the leeway gets 401; within it, 200. Checked
    on first sight and for a token already verified (and cached) before."""

    @pytest.mark.parametrize("past_exp_s", [0, 1, 29, LEEWAY_S])
    @pytest.mark.parametrize("seen_before", [False, True], ids=["first-sight", "seen-before"])
    async def test_within_leeway(
        self,
        api: Api,
        clock: FrozenClock,
        user: dict[str, Any],
        past_exp_s: float,
        seen_before: bool,
    ) -> None:
        token = api.issuer.mint(user, lifetime_s=LIFETIME_S)
        if seen_before:
            await api.accepted(token, user=user)
        clock.advance(LIFETIME_S + past_exp_s)
        await api.accepted(token, user=user)

    @pytest.mark.parametrize("past_exp_s", [LEEWAY_S + 0.5, LEEWAY_S + 1, 3600, 30 * 86_400])
    @pytest.mark.parametrize("seen_before", [False, True], ids=["first-sight", "seen-before"])
    async def test_past_leeway(
        self,
        api: Api,
        clock: FrozenClock,
        user: dict[str, Any],
        past_exp_s: float,
        seen_before: bool,
    ) -> None:
        token = api.issuer.mint(user, lifetime_s=LIFETIME_S)
        if seen_before:
            await api.accepted(token, user=user)
        clock.advance(LIFETIME_S + past_exp_s)
        # Long jumps outlive the JWKS TTL: the keys are refetched on the way (fetches=None).
        await api.refused(token, reason=Reason.EXPIRED, fetches=None)

    async def test_long_expired_on_arrival(self, api: Api, user: dict[str, Any]) -> None:
        now = int(api.issuer.clock())
        token = api.issuer.mint(user, iat=now - 7200, exp=now - 3600)
        await api.refused(token, reason=Reason.EXPIRED)


class TestRequiredClaims:
    """SECURITY_CASES 13: exp, iat, iss, aud and sub are all required (each missing, or
    null, gets 401). Better Auth's payload also has `id`: sub never falls back to it."""

    @pytest.mark.parametrize(
        ("claim", "reason"),
        [
            ("exp", Reason.BAD_CLAIMS),
            ("iat", Reason.BAD_CLAIMS),
            ("iss", Reason.BAD_ISSUER),
            ("aud", Reason.BAD_AUDIENCE),
            ("sub", Reason.BAD_SUBJECT),
        ],
    )
    @pytest.mark.parametrize("how", ["missing", "null"])
    async def test_required(
        self, api: Api, user: dict[str, Any], claim: str, reason: Reason, how: str
    ) -> None:
        override: dict[str, Any] = {claim: OMIT if how == "missing" else None}
        token = api.issuer.mint(user, **override)
        await api.refused(token, reason=reason)

    async def test_only_the_registered_claims_and_sub(self, api: Api, user: dict[str, Any]) -> None:
        """Control: a token with nothing but the five required claims is enough."""
        claims = api.issuer.claims(user)
        minimal = {name: claims[name] for name in ("iat", "exp", "iss", "aud", "sub")}
        user_row_omitted = dict.fromkeys(user, OMIT)
        await api.accepted(api.issuer.mint(user, **user_row_omitted, **minimal), user=user)


NOT_DATES = [
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param("1800000900", id="int-string"),
    pytest.param("1800000900.0", id="float-string"),
    pytest.param("2027-01-15T08:00:00Z", id="iso-string"),
    pytest.param(1e30, id="1e30"),
    pytest.param(10**30, id="10**30"),
    pytest.param(2**64, id="2**64"),
    pytest.param(-1, id="negative"),
    pytest.param(1.8e12, id="milliseconds"),
    pytest.param([1_800_000_900], id="list"),
    pytest.param({"$date": 1_800_000_900}, id="object"),
]


class TestNumericDates:
    """SECURITY_CASES 14: exp, iat and nbf must be JSON numbers that are plausible dates
    (not bools, strings, 1e30...)."""

    @pytest.mark.parametrize("value", NOT_DATES)
    @pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
    async def test_wrong_type(
        self, api: Api, user: dict[str, Any], claim: str, value: object
    ) -> None:
        override: dict[str, Any] = {claim: value}
        token = api.issuer.mint(user, **override)
        # 1.8e12 as exp or iat fails the lifetime or date-range check instead: any of these.
        await api.refused(
            token,
            reason=(Reason.BAD_CLAIMS, Reason.LIFETIME, Reason.NOT_YET_VALID),
        )

    async def test_fractional_dates_are_dates(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """Control: NumericDate may be fractional (RFC 7519 section 2)."""
        now = clock()
        token = api.issuer.mint(user, iat=now - 0.5, nbf=now - 0.25, exp=now + 899.5)
        await api.accepted(token, user=user)


class TestNotYetValid:
    """SECURITY_CASES 15: iat or nbf in the future beyond the leeway gets 401 (at the leeway,
    200); a lifetime (exp - iat) above the cap, or not positive, gets 401."""

    @pytest.mark.parametrize("claim", ["iat", "nbf"])
    async def test_in_the_future_within_leeway(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], claim: str
    ) -> None:
        at = int(clock()) + LEEWAY_S
        override: dict[str, Any] = {claim: at, "exp": at + LIFETIME_S}
        await api.accepted(api.issuer.mint(user, **override), user=user)

    @pytest.mark.parametrize("ahead_s", [LEEWAY_S + 1, 3600, 365 * 86_400])
    @pytest.mark.parametrize("claim", ["iat", "nbf"])
    async def test_in_the_future_beyond_leeway(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], claim: str, ahead_s: int
    ) -> None:
        at = int(clock()) + ahead_s
        override: dict[str, Any] = {claim: at, "exp": at + LIFETIME_S}
        token = api.issuer.mint(user, **override)
        await api.refused(token, reason=Reason.NOT_YET_VALID)

    async def test_lifetime_at_the_cap(self, api: Api, user: dict[str, Any]) -> None:
        await api.accepted(api.issuer.mint(user, lifetime_s=MAX_LIFETIME_S), user=user)

    @pytest.mark.parametrize("lifetime_s", [MAX_LIFETIME_S + 1, 7 * 86_400, 365 * 86_400, 0, -20])
    async def test_lifetime_beyond_the_cap_or_not_positive(
        self, api: Api, user: dict[str, Any], lifetime_s: int
    ) -> None:
        await api.refused(api.issuer.mint(user, lifetime_s=lifetime_s), reason=Reason.LIFETIME)


OUR_ORIGIN = "http://localhost:3000"
WRONG_ISSUERS = [
    pytest.param(OUR_ORIGIN + "/", id="trailing-slash"),
    pytest.param(OUR_ORIGIN[:-1], id="prefix"),
    pytest.param(OUR_ORIGIN + "0", id="superstring-port"),
    pytest.param(OUR_ORIGIN + ".evil.example", id="superstring-host"),
    pytest.param(OUR_ORIGIN + "/api/auth", id="with-path"),
    pytest.param("https://localhost:3000", id="other-scheme"),
    pytest.param("http://LOCALHOST:3000", id="upper-case"),
    pytest.param("http://127.0.0.1:3000", id="same-host-other-name"),
    pytest.param("https://attacker.example", id="other-origin"),
    pytest.param(" " + OUR_ORIGIN, id="leading-space"),
    pytest.param("", id="empty"),
    pytest.param([OUR_ORIGIN], id="list"),
    pytest.param({"iss": OUR_ORIGIN}, id="object"),
    pytest.param(3000, id="number"),
]
WRONG_AUDIENCES = [
    pytest.param("https://attacker.example", id="other-origin"),
    pytest.param(OUR_ORIGIN + "/", id="trailing-slash"),
    pytest.param(OUR_ORIGIN + "0", id="superstring"),
    pytest.param("http://localhost", id="prefix"),
    pytest.param("", id="empty"),
    pytest.param([], id="empty-list"),
    pytest.param(["https://attacker.example"], id="list-without-ours"),
    pytest.param([OUR_ORIGIN, 1], id="list-with-a-non-string"),
    pytest.param([[OUR_ORIGIN]], id="nested-list"),
    pytest.param({"aud": OUR_ORIGIN}, id="object"),
    pytest.param(1, id="number"),
    pytest.param(True, id="bool"),
]


class TestIssuerAndAudience:
    """SECURITY_CASES 16: the issuer must match exactly (no trailing `/`, prefix, superstring
    or look-alike); the audience must be ours (a string, or a list holding it)."""

    @pytest.mark.parametrize("iss", WRONG_ISSUERS)
    async def test_wrong_issuer(self, api: Api, user: dict[str, Any], iss: object) -> None:
        await api.refused(api.issuer.mint(user, iss=iss), reason=Reason.BAD_ISSUER)

    @pytest.mark.parametrize("aud", WRONG_AUDIENCES)
    async def test_wrong_audience(self, api: Api, user: dict[str, Any], aud: object) -> None:
        await api.refused(api.issuer.mint(user, aud=aud), reason=Reason.BAD_AUDIENCE)

    @pytest.mark.parametrize(
        "aud",
        [[OUR_ORIGIN], ["https://other.example", OUR_ORIGIN], [OUR_ORIGIN, OUR_ORIGIN]],
        ids=["list-of-ours", "list-holding-ours", "duplicates"],
    )
    async def test_audience_list_holding_ours(
        self, api: Api, user: dict[str, Any], aud: list[str]
    ) -> None:
        """Control: Better Auth may be configured with several audiences."""
        await api.accepted(api.issuer.mint(user, aud=aud), user=user)


class TestSubject:
    """SECURITY_CASES 17: sub must be a non-blank string (and no coercion: a number does not
    name the user whose id is its decimal form)."""

    @pytest.mark.parametrize(
        "sub",
        [
            pytest.param("", id="empty"),
            pytest.param(" ", id="space"),
            pytest.param("\t\n ", id="whitespace"),
            pytest.param("\u00a0\u2003", id="unicode-whitespace"),
            pytest.param(0, id="zero"),
            pytest.param(True, id="bool"),
            pytest.param(["x"], id="list"),
            pytest.param({"id": "x"}, id="object"),
            pytest.param("x" * 256, id="256-chars"),
        ],
    )
    async def test_not_a_subject(self, api: Api, user: dict[str, Any], sub: object) -> None:
        await api.refused(api.issuer.mint(user, sub=sub), reason=Reason.BAD_SUBJECT)

    @pytest.mark.parametrize("sub", ["\ud800", "a\udfff"], ids=["lone-high", "lone-low"])
    async def test_lone_surrogate(self, api: Api, user: dict[str, Any], sub: str) -> None:
        """Not valid Unicode: refused by the JSON parser (never reaches the database)."""
        token = api.issuer.mint(user, sub=sub)
        await api.refused(token, reason=(Reason.BAD_CLAIMS, Reason.BAD_SUBJECT))

    async def test_number_naming_a_numeric_id(
        self, api: Api, better_auth_database: str, user: dict[str, Any]
    ) -> None:
        numeric = api.issuer.user(id=str(secrets.randbelow(10**9) + 10**9))
        insert_user(better_auth_database, numeric)
        await api.accepted(api.issuer.mint(numeric), user=numeric)
        as_number = api.issuer.mint(numeric, sub=int(numeric["id"]))
        await api.refused(as_number, reason=Reason.BAD_SUBJECT)

    @pytest.mark.parametrize(
        "padding",
        [
            pytest.param(" {}", id="leading-space"),
            pytest.param("{} ", id="trailing-space"),
            pytest.param("{}\n", id="newline"),
            pytest.param("{}\u0000", id="nul-byte"),
            pytest.param("\u0000", id="only-nul"),
            pytest.param("{}\u0000' OR '1'='1", id="nul-and-sql"),
        ],
    )
    async def test_padded_subject_names_nobody(
        self, api: Api, user: dict[str, Any], padding: str
    ) -> None:
        """A sub that differs from the user's id by a character names nobody. A NUL byte
        is worth a case of its own: PostgreSQL text cannot hold it at all."""
        token = api.issuer.mint(user, sub=padding.format(user["id"]))
        await api.refused(token, reason=(Reason.UNKNOWN_USER, Reason.BAD_SUBJECT))


class TestUnknownUser:
    """SECURITY_CASES 18: a valid signature whose sub has no "user" row (never existed, or
    deleted) gets 401, not 404 or 500. A deleted user is refused at once if they had made no
    request, else once the user cache (AUTH_USER_CACHE_TTL_S) has expired."""

    async def test_never_existed(self, api: Api) -> None:
        ghost = api.issuer.user()  # not inserted
        await api.refused(api.issuer.mint(ghost), reason=Reason.UNKNOWN_USER)

    async def test_deleted_before_the_first_request(
        self, api: Api, better_auth_database: str, user: dict[str, Any]
    ) -> None:
        token = api.issuer.mint(user)
        delete_user(better_auth_database, user["id"])
        await api.refused(token, reason=Reason.UNKNOWN_USER)

    async def test_deleted_after_a_cached_lookup(
        self, api: Api, clock: FrozenClock, better_auth_database: str, user: dict[str, Any]
    ) -> None:
        token = api.issuer.mint(user)
        await api.accepted(token, user=user)
        delete_user(better_auth_database, user["id"])
        clock.advance(USER_CACHE_TTL_S + 1)
        await api.refused(token, reason=Reason.UNKNOWN_USER)
        # A fresh token for the same user: refused too.
        await api.refused(api.issuer.mint(user), reason=Reason.UNKNOWN_USER)

    async def test_not_found_is_not_remembered(self, api: Api, better_auth_database: str) -> None:
        """A user refused because their row is not there yet is let in once it is."""
        newcomer = api.issuer.user()
        token = api.issuer.mint(newcomer)
        await api.refused(token, reason=Reason.UNKNOWN_USER)
        insert_user(better_auth_database, newcomer)
        await api.accepted(token, user=newcomer)


def session_data_cookie(issuer: IssuerStub, user: dict[str, Any], secret: bytes) -> str:
    """Better Auth's `session_data` cookie cache in its JWT strategy: an HS256 JWT signed with
    BETTER_AUTH_SECRET, holding the session and the user. Here with our iss, aud and sub too,
    to make it as tempting as it can be."""
    now = int(issuer.clock())
    session = {
        "id": better_auth_id(),
        "token": better_auth_id(),
        "userId": user["id"],
        "expiresAt": "2027-01-22T08:00:00.000Z",
        "createdAt": "2027-01-15T08:00:00.000Z",
        "updatedAt": "2027-01-15T08:00:00.000Z",
        "ipAddress": "127.0.0.1",
        "userAgent": "test",
    }
    payload = {
        "session": session,
        "user": user,
        "updatedAt": now * 1000,
        "iat": now,
        "exp": now + 300,
        "sub": user["id"],
        "iss": issuer.issuer,
        "aud": issuer.audience,
    }
    return forge_hmac({"alg": "HS256", "typ": "JWT"}, payload, secret)


def signed_session_cookie(session_token: str, secret: bytes) -> str:
    """`better-auth.session_token`'s value: <token>.<base64 HMAC-SHA256 of it>."""
    mac = hmac.new(secret, session_token.encode(), hashlib.sha256).digest()
    return f"{session_token}.{base64.b64encode(mac).decode()}"


class TestForeignTokens:
    """SECURITY_CASES 19: a token from another deployment, Better Auth's HS256 `session_data`
    cookie-cache JWT, or a raw session token used as a bearer token gets 401."""

    async def test_another_deployment(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """Other keys, other issuer: unknown kid (one refetch at most, in an open window)."""
        clock.advance(11)
        other = IssuerStub(base_url="https://staging.example", clock=clock)
        await api.refused(other.mint(user), reason=Reason.UNKNOWN_KID, fetches=1)

    async def test_another_deployments_key_with_our_claims(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        other = IssuerStub(base_url="https://staging.example", clock=clock)
        token = api.issuer.mint(user, key=other.signing_key)
        await api.refused(token, reason=Reason.UNKNOWN_KID)

    async def test_another_deployments_key_with_our_kid(
        self, api: Api, user: dict[str, Any]
    ) -> None:
        """Kids are not secrets: another key presented under our kid fails the signature."""
        impostor = generate_key("EdDSA", kid=api.issuer.signing_key.kid)
        await api.refused(api.issuer.mint(user, key=impostor), reason=Reason.BAD_SIGNATURE)

    async def test_our_key_but_another_deployments_claims(
        self, api: Api, user: dict[str, Any]
    ) -> None:
        """Keys shared by mistake with a staging deployment: its tokens still fail on iss."""
        token = api.issuer.mint(user, iss="https://staging.example", aud="https://staging.example")
        await api.refused(token, reason=Reason.BAD_ISSUER)

    @pytest.mark.parametrize("secret", [BETTER_AUTH_SECRET, b"another-deployments-secret"])
    async def test_session_data_cookie_cache_jwt(
        self, api: Api, user: dict[str, Any], secret: bytes
    ) -> None:
        token = session_data_cookie(api.issuer, user, secret)
        await api.refused(token, reason=Reason.ALG_NOT_ALLOWED)

    async def test_raw_session_token(self, api: Api, user: dict[str, Any]) -> None:
        session_token = better_auth_id()  # 32 chars of [A-Za-z0-9], as Better Auth makes them
        await api.refused(session_token, reason=Reason.MALFORMED)

    async def test_signed_session_cookie_value(self, api: Api, user: dict[str, Any]) -> None:
        value = signed_session_cookie(better_auth_id(), BETTER_AUTH_SECRET)
        await api.refused(value, reason=Reason.MALFORMED)
