"""Verification cost per call, as ratios to the raw `cryptography` signature check.

In one process and one run, for each algorithm, with real keys and Better-Auth-shaped tokens:
- raw:      the signature check alone (key loaded, token already split and decoded): the floor
- first:    our TokenVerifier on a token it has never seen (keys cached, as in steady state)
- repeated: our TokenVerifier on a token it has verified before
- pyjwt:    PyJWT's PyJWKClient (JWKS served over loopback, cached) + jwt.decode

Run: `make bench` (or `uv run python -m bench.verify`). Prints a table; writes
bench/results.json in the shape DESIGN.md fixes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from backend.auth import JWKSCache, TokenVerifier
from backend.auth.testing import IssuerStub
from bench.common import serve_jwks
from bench.results import record, target

ALGORITHMS = ("EdDSA", "ES256", "RS256")
FIRST_MAX = 1.25  # our verify on a first-seen token, as a multiple of the raw check
REPEATED_MIN = 50.0  # how many times cheaper than the raw check a repeated token must be


def b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def raw_check(alg: str, public_key: Any) -> Callable[[bytes, bytes], None]:
    """The bare cryptography call a JWS library cannot avoid."""
    if alg == "EdDSA":
        return lambda msg, sig: public_key.verify(sig, msg)
    if alg == "ES256":

        def es256(msg: bytes, sig: bytes) -> None:
            der = encode_dss_signature(int.from_bytes(sig[:32]), int.from_bytes(sig[32:]))
            public_key.verify(der, msg, ec.ECDSA(hashes.SHA256()))

        return es256
    return lambda msg, sig: public_key.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())


def best_per_call(run: Callable[[], None], calls: int, repeats: int) -> float:
    """Microseconds per call: the best of `repeats` batches (the least disturbed one)."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append((time.perf_counter() - start) / calls * 1e6)
    return min(timings)


async def measure(alg: str, calls: int, repeats: int) -> dict[str, float]:
    issuer = IssuerStub(alg=alg)
    user = issuer.user()
    # Distinct tokens (distinct iat) for first-sight runs: one fresh batch per repeat.
    batches = [
        [issuer.mint(user, iat=int(time.time()) - r * calls - i) for i in range(calls)]
        for r in range(repeats + 1)
    ]
    token = batches[0][0]
    signing_input, _, signature = token.rpartition(".")
    msg, sig = signing_input.encode(), b64d(signature)
    check = raw_check(alg, issuer.signing_key.public_key)

    def raw() -> None:
        for _ in range(calls):
            check(msg, sig)

    figures: dict[str, float] = {}
    figures["raw_us"] = best_per_call(raw, calls, repeats)

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=issuer.jwks()))
    ) as client:
        jwks = JWKSCache(issuer.jwks_url, client=client)
        verifier = TokenVerifier(
            jwks, issuer=issuer.issuer, audiences=[issuer.audience], cache_size=calls * 4
        )
        await verifier.verify(token)  # warm the key set

        async def first_sight(batch: list[str]) -> float:
            start = time.perf_counter()
            for t in batch:
                await verifier.verify(t)
            return (time.perf_counter() - start) / len(batch) * 1e6

        figures["first_us"] = min([await first_sight(b) for b in batches[1:]])

        async def repeated() -> float:
            start = time.perf_counter()
            for _ in range(calls * 10):
                await verifier.verify(token)
            return (time.perf_counter() - start) / (calls * 10) * 1e6

        figures["repeated_us"] = min([await repeated() for _ in range(repeats)])

    with serve_jwks(issuer.jwks()) as jwks_server:
        client_ = jwt.PyJWKClient(jwks_server.url)
        client_.get_signing_key_from_jwt(token)

        def pyjwt_run(batch: list[str]) -> Callable[[], None]:
            def run() -> None:
                for t in batch:
                    key = client_.get_signing_key_from_jwt(t)
                    jwt.decode(
                        t, key, algorithms=[alg], audience=issuer.audience, issuer=issuer.issuer
                    )

            return run

        figures["pyjwt_us"] = min(best_per_call(pyjwt_run(b), calls, 1) for b in batches[1:])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    figures: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    print(f"{'alg':6} {'raw µs':>8} {'first':>14} {'repeated':>16} {'pyjwt':>14}")
    for alg in ALGORITHMS:
        f = asyncio.run(measure(alg, args.calls, args.repeats))
        raw = f["raw_us"]
        f["first_ratio"] = f["first_us"] / raw
        f["repeated_ratio"] = f["repeated_us"] / raw
        f["pyjwt_ratio"] = f["pyjwt_us"] / raw
        figures[alg] = {k: round(v, 4) for k, v in f.items()}
        print(
            f"{alg:6} {raw:8.2f} {f['first_us']:7.2f} ({f['first_ratio']:.2f}x)"
            f" {f['repeated_us']:7.3f} (1/{1 / f['repeated_ratio']:.0f})"
            f" {f['pyjwt_us']:7.2f} ({f['pyjwt_ratio']:.2f}x)"
        )
        if alg in ("EdDSA", "ES256"):  # the algorithms DESIGN.md sets the bound for
            ratio = f["first_ratio"]
            targets.append(
                target(
                    f"verify first-seen {alg}",
                    ratio,
                    "x raw",
                    f"<= {FIRST_MAX:g}x raw",
                    ratio <= FIRST_MAX,
                )
            )
        speedup = 1 / f["repeated_ratio"]
        targets.append(
            target(
                f"verify repeated {alg}",
                speedup,
                "x cheaper than raw",
                f">= {REPEATED_MIN:g}x cheaper than raw",
                speedup >= REPEATED_MIN,
            )
        )
    figures["median_first_ratio"] = statistics.median(figures[a]["first_ratio"] for a in ALGORITHMS)
    record("verify", targets, figures)


if __name__ == "__main__":
    main()
