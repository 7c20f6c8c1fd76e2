"""Imported base certificates on the real FerretDB: checked, kept once by SHA-256, their facts answered."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from devkit.keys import generate_dev_seal
from devkit.multistage import base_certificate, chassis_build
from services.archive.base_certificates import BaseCertificates, router
from services.signing.seal import Seal
from shared.auth import Authenticator, Role
from shared.ivi import IviSchema
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration
TOKENS = {Role.MES: "mes-token", Role.VIEWER: "viewer-token"}


@pytest.fixture(scope="module")
def base_xml(schema: IviSchema) -> bytes:
    dev = generate_dev_seal()
    return base_certificate(Seal.from_pem(dev.key_pem, dev.cert_pem), schema)


@pytest.fixture
async def client(test_db: AsyncDatabase[MongoDoc], schema: IviSchema) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router(BaseCertificates(test_db), Authenticator(TOKENS), schema))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://archive") as http:
        yield http


def as_role(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}", "Content-Type": "application/xml"}


async def test_an_imported_base_certificate_is_kept_once_and_answers_its_previous_stage(
    client: httpx.AsyncClient, base_xml: bytes
) -> None:
    sha256 = hashlib.sha256(base_xml).hexdigest()
    first = await client.post("/v1/base-certificates", content=base_xml, headers=as_role(Role.MES))
    assert first.status_code == 201, first.text
    facts = first.json()
    assert facts["previous_stage"]["sha256"] == sha256
    assert facts["previous_stage"]["vin"] == chassis_build().vin
    assert facts["stage_of_completion"] == "I" and "not trusted by this product" in facts["seal"]

    again = await client.post("/v1/base-certificates", content=base_xml, headers=as_role(Role.MES))
    assert again.status_code == 200 and again.json()["previous_stage"] == facts["previous_stage"]

    stored = await client.get(f"/v1/base-certificates/{sha256}", headers=as_role(Role.VIEWER))
    assert stored.status_code == 200 and stored.content == base_xml  # byte-exact
    described = await client.get(f"/v1/base-certificates/{sha256}/facts", headers=as_role(Role.VIEWER))
    assert described.json()["previous_stage"] == facts["previous_stage"]


async def test_a_base_certificate_changed_after_sealing_is_refused_and_not_kept(
    client: httpx.AsyncClient, base_xml: bytes
) -> None:
    tampered = base_xml.replace(b"TFXR-CC4", b"TFXR-CC5", 1)
    answer = await client.post("/v1/base-certificates", content=tampered, headers=as_role(Role.MES))
    assert answer.status_code == 422 and "seal is not intact" in answer.json()["detail"]
    sha256 = hashlib.sha256(tampered).hexdigest()
    missing = await client.get(f"/v1/base-certificates/{sha256}", headers=as_role(Role.VIEWER))
    assert missing.status_code == 404


async def test_only_the_mes_or_type_approval_imports(client: httpx.AsyncClient, base_xml: bytes) -> None:
    answer = await client.post("/v1/base-certificates", content=base_xml, headers=as_role(Role.VIEWER))
    assert answer.status_code == 403


async def test_a_body_larger_than_a_certificate_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/v1/base-certificates", content=b"<" * 1_000_001, headers=as_role(Role.MES))
    assert answer.status_code == 413
