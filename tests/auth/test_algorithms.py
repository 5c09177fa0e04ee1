"""SECURITY_CASES 1-6: algorithm and signature.

Every attack token here carries a real signature (made with a real key, or with HMAC the way
an attacker would) and a payload that would otherwise be accepted: the claims of a user who
exists. The issuer publishes one key of each family (Ed25519, P-256, P-521, RSA PKCS#1, RSA-PSS)
so that each attack meets the kind of key it targets.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import get_default_algorithms
from pydantic import ValidationError

from backend.auth import Reason, TokenError
from backend.auth.testing import IssuerStub, SigningKey, generate_key, sign_compact
from tests.auth.support import (
    Api,
    CacheFactory,
    SettingsFactory,
    VerifierFactory,
    b64decode,
    encode_segment,
    forge_hmac,
    forge_unsigned,
    signature_of,
    split,
    with_signature,
)
from tests.conftest import insert_user

OTHER_ALGS = ("ES256", "ES512", "RS256", "PS256")
ALL_ALGS = ("EdDSA", *OTHER_ALGS)
# Orders of the curves' base points (SEC 2): r or s equal to n is as invalid as 0.
CURVE_ORDER = {
    "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ES512": int(
        "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA51868783BF2F966B7FCC0148F709A5D0"
        "3BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}
COORDINATE_BYTES = {"ES256": 32, "ES512": 66}


@functools.cache
def shared_key(alg: str) -> SigningKey:
    """One key per algorithm for the whole run (RSA key generation is slow)."""
    return generate_key(alg)


@pytest.fixture(autouse=True)
def keyring(issuer: IssuerStub) -> dict[str, SigningKey]:
    """The issuer's keys by alg: its Ed25519 signing key plus one published key of each other
    family. Autouse, so the keys are published before the app's JWKS warm-up."""
    keys = {"EdDSA": issuer.signing_key}
    for alg in OTHER_ALGS:
        keys[alg] = shared_key(alg)
        issuer.published.append(keys[alg])
    return keys


def same_key_other_alg(key: SigningKey, alg: str) -> SigningKey:
    """The very private key of `key`, used with another algorithm (e.g. its RSA key with PSS)."""
    return SigningKey(
        kid=key.kid, alg=alg, private_key=key.private_key, algorithm=get_default_algorithms()[alg]
    )


class TestGenuineSignatures:
    """Control for cases 1-6: a token signed by each published key is accepted, so every
    refusal below is due to the attack alone."""

    @pytest.mark.parametrize("alg", ALL_ALGS)
    async def test_each_published_key_signs_an_accepted_token(
        self, api: Api, keyring: dict[str, SigningKey], user: dict[str, Any], alg: str
    ) -> None:
        await api.accepted(api.issuer.mint(user, key=keyring[alg]), user=user)
        assert api.fetches == 1  # the warm-up only


class TestAlgNone:
    """SECURITY_CASES 1: `alg: none` in any spelling is refused."""

    @pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
    async def test_alg_none_with_empty_signature(
        self, api: Api, user: dict[str, Any], alg: str
    ) -> None:
        header = {"alg": alg, "kid": api.issuer.signing_key.kid}
        await api.refused(forge_unsigned(header, api.issuer.claims(user)))

    @pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
    async def test_alg_none_with_a_signature_segment(
        self, api: Api, user: dict[str, Any], alg: str
    ) -> None:
        """A non-empty signature segment (here: a genuine token's) gets past the shape check
        and must be stopped by the algorithm check."""
        genuine = api.issuer.mint(user)
        header = {"alg": alg, "kid": api.issuer.signing_key.kid}
        forged = forge_unsigned(header, api.issuer.claims(user), split(genuine)[2])
        await api.refused(forged, reason=Reason.ALG_NOT_ALLOWED)

    @pytest.mark.parametrize("alg", ["none", "NONE"])
    async def test_alg_none_without_kid(self, api: Api, user: dict[str, Any], alg: str) -> None:
        await api.refused(forge_unsigned({"alg": alg}, api.issuer.claims(user), "AAAA"))

    @pytest.mark.parametrize(
        "alg", [None, "", 0, ["EdDSA"], {"alg": "EdDSA"}, "eddsa", "EDDSA", "EdDSA "]
    )
    async def test_alg_missing_or_not_one_of_ours(
        self, api: Api, user: dict[str, Any], alg: Any
    ) -> None:
        """Signed by the real key, but the header's alg is absent, mistyped or misspelled."""
        key = api.issuer.signing_key
        header = {"kid": key.kid} if alg is None else {"alg": alg, "kid": key.kid}
        token = sign_compact(header, api.issuer.claims(user), key)
        await api.refused(token, reason=Reason.ALG_NOT_ALLOWED)


def public_key_secrets(key: SigningKey) -> dict[str, bytes]:
    """Every form of a public key an HMAC-confusion attack would try as the secret."""
    public = key.public_key
    jwk = key.jwk
    secrets = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": json.dumps(jwk, separators=(",", ":")).encode(),
        "jwks-json": json.dumps({"keys": [jwk]}).encode(),
    }
    if "x" in jwk:  # OKP and EC
        secrets["raw-x"] = b64decode(jwk["x"])
        secrets["x-text"] = jwk["x"].encode()
    if "y" in jwk:
        secrets["raw-point"] = b"\x04" + b64decode(jwk["x"]) + b64decode(jwk["y"])
    if "n" in jwk:
        secrets["raw-n"] = b64decode(jwk["n"])
        secrets["pkcs1-pem"] = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        )
    return secrets


COMMON_FORMS = ["pem", "der", "jwk-json", "jwk-json-compact", "jwks-json"]
KEY_CONFUSION = [
    *[("EdDSA", form) for form in [*COMMON_FORMS, "raw-x", "x-text"]],
    *[("ES256", form) for form in [*COMMON_FORMS, "raw-x", "x-text", "raw-point"]],
    *[("RS256", form) for form in [*COMMON_FORMS, "raw-n", "pkcs1-pem"]],
]


class TestHmacWithThePublicKey:
    """SECURITY_CASES 2: HS256 signed with the public key (PEM, JWK text, raw bytes...) as the
    HMAC secret: the classic key-confusion attack. Refused before any key is looked up."""

    @pytest.mark.parametrize(("key_alg", "form"), KEY_CONFUSION)
    async def test_public_key_as_hmac_secret(
        self,
        api: Api,
        keyring: dict[str, SigningKey],
        user: dict[str, Any],
        key_alg: str,
        form: str,
    ) -> None:
        key = keyring[key_alg]
        secret = public_key_secrets(key)[form]
        token = forge_hmac({"alg": "HS256", "kid": key.kid}, api.issuer.claims(user), secret)
        await api.refused(token, reason=Reason.ALG_NOT_ALLOWED)

    @pytest.mark.parametrize("alg", ["HS384", "HS512"])
    async def test_other_hmac_algorithms_with_the_public_key(
        self, api: Api, keyring: dict[str, SigningKey], user: dict[str, Any], alg: str
    ) -> None:
        key = keyring["RS256"]
        secret = public_key_secrets(key)["pem"]
        token = forge_hmac({"alg": alg, "kid": key.kid}, api.issuer.claims(user), secret)
        await api.refused(token, reason=Reason.ALG_NOT_ALLOWED)


class TestHmacSecrets:
    """SECURITY_CASES 3: HS* with an empty or common secret is refused; no HS* algorithm is
    accepted, nor can one be configured."""

    @pytest.mark.parametrize(
        "secret",
        [
            b"",
            b"secret",
            b"password",
            b"changeme",
            b"your-256-bit-secret",
            b"test-secret-for-migrations-only-0123456789",  # the tests' BETTER_AUTH_SECRET
        ],
    )
    @pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
    async def test_guessed_secret(
        self, api: Api, user: dict[str, Any], alg: str, secret: bytes
    ) -> None:
        header = {"alg": alg, "kid": api.issuer.signing_key.kid}
        await api.refused(
            forge_hmac(header, api.issuer.claims(user), secret), reason=Reason.ALG_NOT_ALLOWED
        )

    @pytest.mark.parametrize("header", [{"alg": "HS256"}, {"alg": "HS256", "typ": "JWT"}])
    async def test_hmac_without_kid(
        self, api: Api, user: dict[str, Any], header: dict[str, str]
    ) -> None:
        await api.refused(
            forge_hmac(header, api.issuer.claims(user), b"secret"), reason=Reason.ALG_NOT_ALLOWED
        )

    @pytest.mark.parametrize("alg", ["HS256", "HS512", "none"])
    async def test_cannot_be_configured(
        self,
        make_settings: SettingsFactory,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
        alg: str,
    ) -> None:
        with pytest.raises(ValidationError, match="asymmetric only"):
            make_settings(auth_algorithms=alg)
        with pytest.raises(ValueError, match="unsupported algorithms"):
            make_verifier(make_cache(), algorithms=["EdDSA", alg])


PSYCHIC = [
    pytest.param("ES256", 0, 0, id="ES256-r=s=0"),
    pytest.param("ES256", 0, 1, id="ES256-r=0"),
    pytest.param("ES256", 1, 0, id="ES256-s=0"),
    pytest.param("ES256", "n", "n", id="ES256-r=s=n"),
    pytest.param("ES512", 0, 0, id="ES512-r=s=0"),
    pytest.param("ES512", "n", "n", id="ES512-r=s=n"),
]


class TestPsychicSignature:
    """SECURITY_CASES 4: ECDSA signatures with r or s zero (CVE-2022-21449) or equal to the
    curve order are refused against a real EC key."""

    @pytest.mark.parametrize(("alg", "r", "s"), PSYCHIC)
    async def test_degenerate_ecdsa_signature(
        self,
        api: Api,
        keyring: dict[str, SigningKey],
        user: dict[str, Any],
        alg: str,
        r: int | str,
        s: int | str,
    ) -> None:
        size, order = COORDINATE_BYTES[alg], CURVE_ORDER[alg]
        r_value = order if r == "n" else int(r)
        s_value = order if s == "n" else int(s)
        signature = r_value.to_bytes(size, "big") + s_value.to_bytes(size, "big")
        genuine = api.issuer.mint(user, key=keyring[alg])
        await api.refused(with_signature(genuine, signature), reason=Reason.BAD_SIGNATURE)

    @pytest.mark.parametrize("alg", ["ES256", "ES512"])
    async def test_der_encoded_zero_signature(
        self, api: Api, keyring: dict[str, SigningKey], user: dict[str, Any], alg: str
    ) -> None:
        """The DER form some libraries accept instead of JWS's r || s."""
        genuine = api.issuer.mint(user, key=keyring[alg])
        await api.refused(
            with_signature(genuine, encode_dss_signature(0, 0)), reason=Reason.BAD_SIGNATURE
        )


MISMATCHES = [
    ("RS256", "EdDSA"),
    ("ES256", "EdDSA"),
    ("PS256", "EdDSA"),
    ("ES512", "EdDSA"),
    ("EdDSA", "ES256"),
    ("ES512", "ES256"),
    ("ES256", "ES512"),
    ("PS256", "RS256"),
    ("RS256", "PS256"),
    ("EdDSA", "RS256"),
]


class TestAlgorithmMismatch:
    """SECURITY_CASES 5: the header's alg must equal the alg of the key its kid names."""

    @pytest.mark.parametrize(("header_alg", "key_alg"), MISMATCHES)
    async def test_attacker_key_of_another_alg_naming_our_kid(
        self,
        api: Api,
        keyring: dict[str, SigningKey],
        user: dict[str, Any],
        header_alg: str,
        key_alg: str,
    ) -> None:
        attacker = generate_key(header_alg)
        header = {"alg": header_alg, "kid": keyring[key_alg].kid}
        token = sign_compact(header, api.issuer.claims(user), attacker)
        await api.refused(token, reason=Reason.ALG_MISMATCH)

    @pytest.mark.parametrize(
        ("key_alg", "used_as"),
        [("RS256", "PS256"), ("RS256", "RS512"), ("PS256", "RS256"), ("PS256", "PS512")],
    )
    async def test_our_own_rsa_key_used_with_another_alg(
        self,
        api: Api,
        keyring: dict[str, SigningKey],
        user: dict[str, Any],
        key_alg: str,
        used_as: str,
    ) -> None:
        """A signature genuinely made by our RSA private key, but with another padding or
        hash than the key's one alg: a verifier that trusted the header would accept it."""
        key = same_key_other_alg(keyring[key_alg], used_as)
        token = api.issuer.mint(user, key=key)
        await api.refused(token, reason=Reason.ALG_MISMATCH)

    async def test_alg_outside_the_configured_list(
        self,
        issuer: IssuerStub,
        keyring: dict[str, SigningKey],
        user: dict[str, Any],
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
    ) -> None:
        """AUTH_ALGORITHMS=EdDSA: a published ES256 key is not used, even for its own token."""
        verifier = make_verifier(make_cache(allowed_algorithms={"EdDSA"}), algorithms={"EdDSA"})
        assert (await verifier.verify(issuer.mint(user))).sub == user["id"]
        with pytest.raises(TokenError) as refused:
            await verifier.verify(issuer.mint(user, key=keyring["ES256"]))
        assert refused.value.reason is Reason.ALG_NOT_ALLOWED


def flip_first_bit(signature: bytes) -> bytes:
    return bytes([signature[0] ^ 0x80]) + signature[1:]


def flip_last_bit(signature: bytes) -> bytes:
    return signature[:-1] + bytes([signature[-1] ^ 0x01])


SIGNATURE_EDITS: dict[str, Callable[[bytes], bytes]] = {
    "truncated-by-one-byte": lambda sig: sig[:-1],
    "truncated-to-half": lambda sig: sig[: len(sig) // 2],
    "truncated-to-one-byte": lambda sig: sig[:1],
    "first-bit-flipped": flip_first_bit,
    "last-bit-flipped": flip_last_bit,
    "doubled": lambda sig: sig + sig,
    "one-byte-appended": lambda sig: sig + b"\x00",
    "all-zero": lambda sig: bytes(len(sig)),
    "all-ones": lambda sig: b"\xff" * len(sig),
}


class TestBrokenSignatures:
    """SECURITY_CASES 6: a null, truncated, bit-flipped or borrowed signature, or a payload
    or header edited after signing, is refused, for every key family."""

    @pytest.mark.parametrize("alg", ALL_ALGS)
    async def test_null_signature(
        self, api: Api, keyring: dict[str, SigningKey], user: dict[str, Any], alg: str
    ) -> None:
        header, payload, _ = split(api.issuer.mint(user, key=keyring[alg]))
        await api.refused(f"{header}.{payload}.", reason=Reason.MALFORMED)

    @pytest.mark.parametrize("edit", sorted(SIGNATURE_EDITS))
    @pytest.mark.parametrize("alg", ALL_ALGS)
    async def test_edited_signature(
        self,
        api: Api,
        keyring: dict[str, SigningKey],
        user: dict[str, Any],
        alg: str,
        edit: str,
    ) -> None:
        genuine = api.issuer.mint(user, key=keyring[alg])
        edited = with_signature(genuine, SIGNATURE_EDITS[edit](signature_of(genuine)))
        await api.refused(edited, reason=Reason.BAD_SIGNATURE)

    @pytest.mark.parametrize("alg", ALL_ALGS)
    async def test_payload_swapped_for_another_users(
        self,
        api: Api,
        keyring: dict[str, SigningKey],
        user: dict[str, Any],
        better_auth_database: str,
        alg: str,
    ) -> None:
        """The signature of Ada's token on a payload naming Bob (who exists): refused."""
        victim = api.issuer.user(name="Bob")
        insert_user(better_auth_database, victim)
        header, _, signature = split(api.issuer.mint(user, key=keyring[alg]))
        _, victims_payload, _ = split(api.issuer.mint(victim, key=keyring[alg]))
        await api.refused(f"{header}.{victims_payload}.{signature}", reason=Reason.BAD_SIGNATURE)

    @pytest.mark.parametrize("alg", ALL_ALGS)
    async def test_payload_edited_in_place(
        self, api: Api, keyring: dict[str, SigningKey], user: dict[str, Any], alg: str
    ) -> None:
        """Lifetime stretched by a day after signing."""
        genuine = api.issuer.mint(user, key=keyring[alg])
        header, _, signature = split(genuine)
        stretched = api.issuer.claims(user)
        stretched["exp"] += 86_000
        forged = f"{header}.{encode_segment(stretched)}.{signature}"
        await api.refused(forged, reason=Reason.BAD_SIGNATURE)

    @pytest.mark.parametrize("alg", ALL_ALGS)
    async def test_header_edited_after_signing(
        self, api: Api, keyring: dict[str, SigningKey], user: dict[str, Any], alg: str
    ) -> None:
        key = keyring[alg]
        _, payload, signature = split(api.issuer.mint(user, key=key))
        header = encode_segment({"alg": key.alg, "kid": key.kid, "typ": "JWT"})
        await api.refused(f"{header}.{payload}.{signature}", reason=Reason.BAD_SIGNATURE)

    async def test_signature_borrowed_from_another_key(
        self, api: Api, keyring: dict[str, SigningKey], user: dict[str, Any]
    ) -> None:
        """A genuine ES512 signature, by another P-521 key, under our ES512 kid."""
        es512 = keyring["ES512"]
        signed_by_other = sign_compact(
            {"alg": "ES512", "kid": es512.kid}, api.issuer.claims(user), generate_key("ES512")
        )
        await api.refused(signed_by_other, reason=Reason.BAD_SIGNATURE)
