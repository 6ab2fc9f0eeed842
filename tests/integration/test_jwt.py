"""JWT bearer tokens verified against a JWKS served over HTTP on 127.0.0.1 (as Keycloak or
Dex would serve it): RS256 and ES256, issuer, audience, expiry, tenant and role claims, key
rotation (an unknown `kid` refetches the JWKS), and refusal of everything else."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ragapi.embedded import EmbeddedStack, free_port
from tests.conftest import ApiProcess, start_api, stop_api

pytestmark = pytest.mark.integration
ISSUER, AUDIENCE = "https://idp.test/realms/ragline", "ragline-api"


class Idp:
    """Keys and a JWKS endpoint; `rotate()` publishes a new key."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {
            "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec-1": ec.generate_private_key(ec.SECP256R1()),
        }
        self.published = {"rsa-1", "ec-1"}
        self.fetches = 0
        self.port = free_port()

        async def jwks(_: Request) -> JSONResponse:
            self.fetches += 1
            out = []
            for kid in sorted(self.published):
                key = self.keys[kid]
                algo = (
                    jwt.algorithms.RSAAlgorithm
                    if kid.startswith("rsa")
                    else jwt.algorithms.ECAlgorithm
                )
                jwk = json.loads(algo.to_jwk(key.public_key()))
                out.append(
                    {
                        **jwk,
                        "kid": kid,
                        "use": "sig",
                        "alg": "RS256" if kid.startswith("rsa") else "ES256",
                    }
                )
            return JSONResponse({"keys": out})

        self.server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=[Route("/certs", jwks)]),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/certs"

    def token(self, kid: str = "rsa-1", **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            "tenant": "jwt-co",
            "role": "admin",
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        alg = "RS256" if kid.startswith("rsa") else "ES256"
        return jwt.encode(claims, self.keys[kid], algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    p = Idp()
    p.thread.start()
    while not p.server.started:
        time.sleep(0.02)
    yield p
    p.server.should_exit = True
    p.thread.join(10)


@pytest.fixture(scope="module")
def jwt_api(
    stack: EmbeddedStack, idp: Idp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    work = tmp_path_factory.mktemp("jwt")
    routing = work / "routing.yaml"
    routing.write_text(
        "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: jwtdocs}\n"
    )
    api = start_api(
        routing,
        {
            "RAGLINE_JWT_JWKS_URL": idp.url,
            "RAGLINE_JWT_ISSUER": ISSUER,
            "RAGLINE_JWT_AUDIENCE": AUDIENCE,
            "RAGLINE_JWT_REFRESH_FLOOR_SECONDS": "1",
        },
        stack,
        work / "api.log",
    )
    yield api
    stop_api(api)


def call(
    api: ApiProcess, token: str, method: str = "GET", path: str = "/v1/indexes", **kw: Any
) -> httpx.Response:
    return httpx.request(
        method, f"{api.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kw
    )


def test_valid_tokens_rs256_and_es256(jwt_api: ApiProcess, idp: Idp) -> None:
    assert call(jwt_api, idp.token("rsa-1")).status_code == 200
    assert call(jwt_api, idp.token("ec-1")).status_code == 200
    up = call(
        jwt_api,
        idp.token(),
        "POST",
        "/v1/indexes/jwtdocs/documents",
        json={"source": "j.txt", "content": "Tokens carry the tenant claim."},
    )
    assert up.status_code == 201
    # the tenant comes from the claim: another tenant's token does not see the document
    other = call(
        jwt_api,
        idp.token(tenant="someone-else"),
        path=f"/v1/indexes/jwtdocs/documents/{up.json()['id']}",
    )
    assert other.status_code == 404
    same = call(
        jwt_api,
        idp.token("ec-1", sub="bob"),
        path=f"/v1/indexes/jwtdocs/documents/{up.json()['id']}",
    )
    assert same.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": int(time.time()) - 3600}, "token expired"),
        ({"aud": "someone-else"}, "invalid token"),
        ({"iss": "https://evil.test"}, "invalid token"),
        ({"tenant": None}, "no 'tenant' claim"),
        ({"sub": None}, "invalid token"),
    ],
)
def test_bad_claims_are_401(
    jwt_api: ApiProcess, idp: Idp, overrides: dict[str, Any], message: str
) -> None:
    resp = call(jwt_api, idp.token(**overrides))
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthenticated"
    assert message in resp.json()["error"]["message"]


def test_forged_and_confused_tokens_are_401(jwt_api: ApiProcess, idp: Idp) -> None:
    good = idp.token()
    head, body, sig = good.split(".")
    tampered = f"{head}.{body[:-4]}AAAA.{sig}"
    assert call(jwt_api, tampered).status_code == 401
    # HS256 signed with the public key as the secret: the classic algorithm confusion
    hs = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "x",
            "exp": int(time.time()) + 60,
            "tenant": "jwt-co",
        },
        "not-a-real-secret-but-long-enough-to-sign",
        algorithm="HS256",
        headers={"kid": "rsa-1"},
    )
    resp = call(jwt_api, hs)
    assert resp.status_code == 401 and "algorithm" in resp.json()["error"]["message"]
    none = jwt.encode({"iss": ISSUER}, None, algorithm="none")
    assert call(jwt_api, none).status_code == 401


def test_reader_role_is_403_on_writes(jwt_api: ApiProcess, idp: Idp) -> None:
    reader = idp.token(role="reader")
    assert (
        call(
            jwt_api, reader, "POST", "/v1/indexes/jwtdocs/search", json={"query": "tenant"}
        ).status_code
        == 200
    )
    denied = call(
        jwt_api,
        reader,
        "POST",
        "/v1/indexes/jwtdocs/documents",
        json={"source": "r", "content": "x"},
    )
    assert denied.status_code == 403
    assert call(jwt_api, idp.token(role="superuser")).status_code == 403
    scoped = idp.token(indexes=["other-index"])
    assert (
        call(jwt_api, scoped, "POST", "/v1/indexes/jwtdocs/search", json={"query": "q"}).status_code
        == 403
    )


def test_key_rotation_refetches_the_jwks(jwt_api: ApiProcess, idp: Idp) -> None:
    idp.keys["rsa-2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown = idp.token("rsa-2")
    time.sleep(1.1)  # past the refresh floor (1 s here), so an unknown kid may refetch
    assert call(jwt_api, unknown).status_code == 401  # not published yet
    idp.published.add("rsa-2")
    time.sleep(1.1)
    before = idp.fetches
    assert call(jwt_api, unknown).status_code == 200
    assert idp.fetches == before + 1
    assert call(jwt_api, idp.token("rsa-2")).status_code == 200
    assert idp.fetches == before + 1  # cached now


def test_api_keys_still_work_beside_jwt(jwt_api: ApiProcess) -> None:
    key = jwt_api.create_key("reader")
    assert call(jwt_api, key).status_code == 200


def test_tokens_never_reach_the_log(jwt_api: ApiProcess, idp: Idp) -> None:
    token = idp.token()
    call(jwt_api, token)
    log = Path(jwt_api.log).read_text()
    assert token not in log and token.split(".")[2] not in log
