"""An issuer stub for tests: real keys, real signatures, a fake network.

`IssuerStub` plays Better Auth's part: it holds signing keys of any supported algorithm,
publishes them as a JWKS (served through respx, so only the HTTP call is faked), and mints
tokens shaped exactly like Better Auth's (header `{"alg", "kid"}` with no `typ`; payload = the
whole user row plus `sub`, `iat`, `exp`, `iss`, `aud`). It can rotate keys and sign anything,
including the malformed and hostile tokens a security test needs.

    issuer = IssuerStub(base_url="http://localhost:3000")
    with respx.mock:
        route = issuer.mock()              # GET http://localhost:3000/api/auth/jwks
        token = issuer.mint(issuer.user(email="ada@example.com"))
        ...                                 # call your app with f"Bearer {token}"
        assert route.call_count == 1
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import Algorithm, get_default_algorithms

from backend.auth.jwks import KEY_TYPES

if TYPE_CHECKING:
    import respx

_CURVES: Mapping[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}
_ID_ALPHABET = string.ascii_letters + string.digits


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
"""Pass as a claim value to `mint` to leave that claim out."""


def better_auth_id() -> str:
    """An id the way Better Auth makes them: 32 characters of [A-Za-z0-9]."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, eq=False)
class SigningKey:
    kid: str
    alg: str
    private_key: Any
    algorithm: Algorithm = field(repr=False)

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    @property
    def jwk(self) -> dict[str, Any]:
        """The public JWK as Better Auth publishes it: `alg` and `kid`, never `use`."""
        return {
            "alg": self.alg,
            **self.algorithm.to_jwk(self.public_key, as_dict=True),
            "kid": self.kid,
        }

    def sign(self, signing_input: bytes) -> bytes:
        return self.algorithm.sign(signing_input, self.private_key)


def generate_key(alg: str = "EdDSA", *, kid: str | None = None, rsa_bits: int = 2048) -> SigningKey:
    """A fresh key pair for `alg` (any of backend.auth.jwks.SUPPORTED_ALGORITHMS)."""
    kty, crv = KEY_TYPES[alg]
    private_key: Any
    if kty == "OKP":
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif kty == "EC":
        assert crv is not None
        private_key = ec.generate_private_key(_CURVES[crv])
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    return SigningKey(
        kid=kid or better_auth_id(),
        alg=alg,
        private_key=private_key,
        algorithm=get_default_algorithms()[alg],
    )


def sign_compact(
    header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, key: SigningKey
) -> str:
    """A compact JWS with exactly this header (nothing added) and payload, signed by `key`."""
    raw_payload = payload if isinstance(payload, bytes) else compact_json(payload)
    signing_input = f"{b64url(compact_json(header))}.{b64url(raw_payload)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


class IssuerStub:
    """A stand-in for Better Auth's jwt plugin. Not thread-safe; one per test."""

    def __init__(
        self,
        *,
        base_url: str = "http://localhost:3000",
        jwks_url: str | None = None,
        alg: str = "EdDSA",
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.issuer = self.audience = self.origin  # Better Auth's defaults: the base URL origin
        self.jwks_url = jwks_url or f"{self.origin}/api/auth/jwks"
        self.clock = clock
        self.signing_key = generate_key(alg)
        self.published: list[SigningKey] = [self.signing_key]

    # -- keys -----------------------------------------------------------------------------
    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk for key in self.published]}

    def add_key(self, alg: str = "EdDSA") -> SigningKey:
        """Publish another key without signing with it."""
        key = generate_key(alg)
        self.published.insert(0, key)
        return key

    def rotate(self, alg: str | None = None) -> SigningKey:
        """Sign with a new key from now on; older keys stay published (Better Auth's grace
        period) until `remove_key`."""
        self.signing_key = self.add_key(alg or self.signing_key.alg)
        return self.signing_key

    def remove_key(self, kid: str) -> None:
        self.published = [key for key in self.published if key.kid != kid]

    def mock(self, router: respx.Router | None = None) -> respx.Route:
        """Serve the current JWKS at `jwks_url` through respx (the active mock by default).
        The answer follows later `rotate`/`remove_key` calls."""
        import httpx
        import respx

        target = router if router is not None else respx
        return target.get(self.jwks_url).mock(
            side_effect=lambda request: httpx.Response(200, json=self.jwks())
        )

    # -- tokens ---------------------------------------------------------------------------
    def user(self, **fields: Any) -> dict[str, Any]:
        """A row of Better Auth's "user" table, as the jwt plugin copies it into tokens."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        row: dict[str, Any] = {
            "name": "Ada Lovelace",
            "email": f"ada-{secrets.token_hex(4)}@example.com",
            "emailVerified": False,
            "image": None,
            "createdAt": now,
            "updatedAt": now,
            "id": better_auth_id(),
        }
        row.update(fields)
        return row

    def claims(
        self, user: Mapping[str, Any] | None = None, *, lifetime_s: int = 900, **overrides: Any
    ) -> dict[str, Any]:
        """Better Auth's default payload: iat, the whole user row, sub, exp, iss, aud.
        Overrides replace claims; a value of OMIT removes one."""
        row = dict(user) if user is not None else self.user()
        now = int(self.clock())
        payload: dict[str, Any] = {
            "iat": now,
            **row,
            "sub": row["id"],
            "exp": now + lifetime_s,
            "iss": self.issuer,
            "aud": self.audience,
        }
        payload.update(overrides)
        return {name: value for name, value in payload.items() if value is not OMIT}

    def mint(
        self,
        user: Mapping[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        header: Mapping[str, Any] | None = None,
        lifetime_s: int = 900,
        **overrides: Any,
    ) -> str:
        """A token as Better Auth issues it, signed by the current signing key (or `key`).
        `header` entries are added to `{"alg", "kid"}` (OMIT removes one)."""
        signer = key or self.signing_key
        full_header = {"alg": signer.alg, "kid": signer.kid, **(header or {})}
        full_header = {name: value for name, value in full_header.items() if value is not OMIT}
        return sign_compact(
            full_header, self.claims(user, lifetime_s=lifetime_s, **overrides), signer
        )
