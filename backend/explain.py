"""Why is my token refused? `python -m backend.explain <token>` says, check by check.

It reads the same settings as the backend (environment, .env), fetches the configured JWKS,
and walks a token through what the verifier checks: form, header, key, signature, issuer,
audience, times (with the clock skew allowed), subject, the session row (`sid`, when
AUTH_REQUIRE_SESSION is on) and the user row. The verdict at the end comes from the real
TokenVerifier and the backend's own session and user lookups, so the explanation can never
accept what the backend would refuse. The token itself is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import JWKSCache, JWKSUnavailable, TokenError, TokenVerifier
from backend.config import Settings
from backend.db import create_engine, create_sessionmaker
from backend.sessions import SessionDirectory
from backend.users import UserDirectory
from backend.verifier import build_verifier


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def bad(self, text: str) -> None:
        self.problems += 1
        self.lines.append(f"  FAIL  {text}")

    def info(self, text: str) -> None:
        self.lines.append(f"        {text}")


def _peek(segment: str) -> Any:
    """Decode a segment without trusting it, for display only."""
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def check_times(claims: dict[str, Any], settings: Settings, now: float, report: Report) -> None:
    leeway = settings.auth_leeway_s
    exp, iat = claims.get("exp"), claims.get("iat")
    numeric = (int, float)
    if not isinstance(exp, numeric) or isinstance(exp, bool):
        report.bad(f"exp must be a number, got {exp!r}")
    elif now > exp + leeway:
        report.bad(f"expired {_ago(now - exp)} ago (clock skew allowed: {leeway}s)")
    else:
        report.ok(f"exp: valid for {_ago(exp - now)} more (skew allowed: {leeway}s)")
    if not isinstance(iat, numeric) or isinstance(iat, bool):
        report.bad(f"iat must be a number, got {iat!r}")
    elif iat > now + leeway:
        report.bad(f"iat is {_ago(iat - now)} in the future: is a clock wrong? (skew {leeway}s)")
    else:
        report.ok(f"iat: issued {_ago(now - iat)} ago")
    if isinstance(exp, numeric) and isinstance(iat, numeric):
        lifetime, cap = exp - iat, settings.auth_max_token_lifetime_s
        if not 0 < lifetime <= cap:
            report.bad(f"lifetime exp - iat = {lifetime:.0f}s, allowed 1..{cap}s")


def check_claims(claims: dict[str, Any], settings: Settings, report: Report) -> None:
    iss = claims.get("iss")
    if iss == settings.issuer:
        report.ok(f"iss: {iss!r}")
    else:
        report.bad(f"iss: expected {settings.issuer!r}, got {iss!r} (set BETTER_AUTH_ISSUER?)")
    aud = claims.get("aud")
    accepted = set(settings.audiences)
    given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if accepted.intersection(a for a in given if isinstance(a, str)):
        report.ok(f"aud: {aud!r}")
    else:
        report.bad(f"aud: expected one of {sorted(accepted)}, got {aud!r}")
    sub = claims.get("sub")
    if isinstance(sub, str) and sub.strip():
        report.ok(f"sub: {sub!r}")
    else:
        report.bad(f"sub must be a non-blank string, got {sub!r}")


async def explain(
    token: str, settings: Settings, *, clock: Callable[[], float] = time.time
) -> Report:
    report = Report()
    token = token.strip().removeprefix("Bearer ").strip()
    report.lines.append(f"token: {len(token)} bytes (limit {settings.auth_max_token_bytes})")
    parts = token.split(".")
    if len(parts) != 3:
        report.bad(f"a JWT has 3 dot-separated parts; this has {len(parts)}")
        return report
    try:
        header, claims = _peek(parts[0]), _peek(parts[1])
    except (ValueError, UnicodeDecodeError):
        report.bad("header or payload is not base64url-encoded JSON")
        return report
    if not isinstance(header, dict) or not isinstance(claims, dict):
        report.bad("header and payload must be JSON objects")
        return report
    alg, kid = header.get("alg"), header.get("kid")
    report.lines.append("header:")
    if alg in settings.auth_algorithms:
        report.ok(f"alg {alg!r} is allowed")
    else:
        report.bad(f"alg {alg!r} is not one of AUTH_ALGORITHMS {list(settings.auth_algorithms)}")

    report.lines.append(f"keys: {settings.jwks_url}")
    async with httpx.AsyncClient() as http:
        jwks, verifier = build_verifier(settings, http, clock, JWKSCache, TokenVerifier)
        try:
            await jwks.refresh()
            report.ok(f"fetched {len(jwks.keys)} key(s): {', '.join(jwks.keys)}")
            key = jwks.keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                report.bad(
                    f"kid {kid!r} is not in the key set (another deployment? secret changed?)"
                )
            else:
                report.ok(f"kid {kid!r} found, key alg {key.alg}")
                if key.alg != alg:
                    report.bad(f"header alg {alg!r} differs from the key's alg {key.alg!r}")
        except Exception as exc:
            report.bad(f"could not fetch the key set: {exc}")

        report.lines.append("claims:")
        check_claims(claims, settings, report)
        check_times(claims, settings, clock(), report)

        report.lines.append("verdict:")
        try:
            verified = await verifier.verify(token)
        except TokenError as exc:
            report.bad(f"REFUSED by the verifier: {exc.reason.value} {exc.detail}".rstrip())
            return report
        except JWKSUnavailable as exc:
            report.bad(f"UNAVAILABLE (503): {exc.detail}")
            return report
        report.ok("signature and claims accepted by the verifier")

    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            session_ok = not settings.auth_require_session or await check_session(
                db, claims.get("sid"), verified.sub, clock, report
            )
            user = await UserDirectory(ttl_s=0, clock=clock).get(db, verified.sub)
    except Exception as exc:
        report.bad(f"could not read the database: {type(exc).__name__}: {exc}")
        return report
    finally:
        await engine.dispose()
    if user is None:
        report.bad(f'no row in "user" with id {verified.sub!r} (deleted? another database?)')
    else:
        report.ok(f"user row found: {user.email}")
        if session_ok:
            report.lines.append("ACCEPTED")
    return report


async def check_session(
    db: AsyncSession, sid: object, sub: str, clock: Callable[[], float], report: Report
) -> bool:
    """AUTH_REQUIRE_SESSION: the token's `sid` must name a live session row of its `sub`."""
    if not isinstance(sid, str) or not sid:
        report.bad(
            "no sid claim, and AUTH_REQUIRE_SESSION is on: add `sid: session.id` with the jwt "
            "plugin's definePayload (see frontend/lib/auth.ts) or set AUTH_REQUIRE_SESSION=false"
        )
        return False
    try:
        await SessionDirectory(ttl_s=0, clock=clock).check_sid(db, sid, sub)
    except TokenError as exc:
        report.bad(f"session {sid!r}: {exc.detail}")
        return False
    report.ok(f"session row {sid!r} is live")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.explain", description=__doc__)
    parser.add_argument("token", help="the JWT (or '-' to read it from standard input)")
    args = parser.parse_args(argv)
    from_stdin = args.token == "-"  # noqa: S105 - "-" means standard input, not a secret
    token = sys.stdin.read() if from_stdin else args.token
    report = asyncio.run(explain(token, Settings()))
    print("\n".join(report.lines))
    return 0 if report.problems == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
