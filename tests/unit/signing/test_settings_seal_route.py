"""Signing's GET /v1/seal: the settings' seal's public facts for the workspace's seals page, behind a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devkit.seals import holder_seal
from services.signing import routes
from services.signing.seal import Seal
from services.signing.settings import SigningSettings
from shared.auth import Authenticator, Role

pytestmark = pytest.mark.unit

KAROO = "KAROO MOTOR WORKS (PTY) LTD"
TOKENS = {Role.VIEWER: "viewer-token", Role.MES: "mes-token"}


def client(seal: Seal | None, holder: str | None = None, key: str = "file /keys/seal.key") -> TestClient:
    app = FastAPI()
    app.include_router(routes.router(lambda: seal, holder, key, Authenticator(TOKENS)))
    return TestClient(app)


def test_the_settings_seal_is_answered_with_its_public_facts_and_never_its_key() -> None:
    made = holder_seal(KAROO, days=40)
    seal = Seal.from_pem(made.key_pem, made.cert_pem)
    answer = client(seal, holder=KAROO).get("/v1/seal", headers={"Authorization": "Bearer viewer-token"})
    assert answer.status_code == 200
    found = answer.json()
    certificate = x509.load_pem_x509_certificate(made.cert_pem)
    assert found["holder"] == KAROO
    assert found["fingerprint"] == seal.fingerprint and len(found["fingerprint"]) == 64
    assert found["serial"] == f"{certificate.serial_number:x}"
    assert "O=KAROO MOTOR WORKS (PTY) LTD" in found["subject"]
    assert found["not_after"] == certificate.not_valid_after_utc.isoformat()
    assert found["key"] == "file /keys/seal.key"
    assert "PRIVATE" not in answer.text and made.key_pem.decode().splitlines()[1] not in answer.text


def test_the_settings_seal_needs_a_token_of_any_role() -> None:
    made = holder_seal(KAROO)
    site = client(Seal.from_pem(made.key_pem, made.cert_pem))
    assert site.get("/v1/seal").status_code == 401
    assert site.get("/v1/seal", headers={"Authorization": "Bearer guessed"}).status_code == 401
    assert site.get("/v1/seal", headers={"Authorization": "Bearer mes-token"}).json()["holder"] is None


def test_before_the_seal_is_read_the_answer_is_503_saying_so() -> None:
    answer = client(None).get("/v1/seal", headers={"Authorization": "Bearer viewer-token"})
    assert answer.status_code == 503 and "not read yet" in answer.json()["detail"]


def test_the_key_is_named_as_a_file_path_or_as_the_token_keys_label() -> None:
    as_file = SigningSettings(seal_key=Path("/keys/a.key"), seal_cert=Path("/keys/a.pem"))
    on_token = SigningSettings(
        seal_pkcs11_module=Path("/usr/lib/softhsm/libsofthsm2.so"), seal_pkcs11_key="plant-seal"
    )
    assert routes.key_of(as_file) == "file /keys/a.key"
    assert routes.key_of(on_token) == "token key plant-seal"


def test_the_signing_service_serves_its_seal_read_and_declares_the_401_it_answers() -> None:
    from services.signing.app import create_app

    answers = create_app().openapi()["paths"]["/v1/seal"]["get"]["responses"]
    assert {"200", "401", "503"} <= set(answers)
