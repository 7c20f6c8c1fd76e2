"""The certificates an approval change affects, listed from the archive's heads on the real FerretDB (interface 2)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from services.archive import routes
from services.archive.adapters.store import CertificateStore
from shared.auth import Authenticator, Role
from shared.contracts import ApprovalRef, BuildRecord
from shared.contracts.events import Document, Evidence
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

TOKEN = "viewer-token"
OLD, NEW = "a" * 64, "b" * 64


@pytest.fixture
async def store(test_db: AsyncDatabase[MongoDoc]) -> CertificateStore:
    made = CertificateStore(test_db)
    await made.setup()
    return made


@pytest.fixture
async def client(store: CertificateStore) -> httpx.AsyncClient:
    app = FastAPI()

    async def no_receipts(_vin: str) -> str:
        return "none"

    app.include_router(routes.router(store, Authenticator({Role.VIEWER: TOKEN}), no_receipts))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(
        transport=transport, base_url="http://archive", headers={"Authorization": f"Bearer {TOKEN}"}
    )


def certificate(vin: str, revision: int, key: str, sha256: str) -> Document:
    build = BuildRecord(
        vin=vin,
        build_id=f"B-{vin}",
        revision=revision,
        plant="Durban",
        vehicle_group="Polo",
        approval=ApprovalRef(number="e1*2018/858*00001*00", type="T", variant="V", version=key[-6:]),
        released_at=dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC),
    )
    xml = f"<IVI><VIN>{vin}</VIN><R>{revision}</R></IVI>"
    return Document(
        record_id=build.record_id,
        vin=vin,
        revision=revision,
        version_number=revision,
        xml=xml,
        sha256=hashlib.sha256(xml.encode()).hexdigest(),
        signer_fingerprint="ab" * 32,
        evidence=Evidence(build=build, approval_key=key, approval_sha256=sha256),
    )


async def test_lists_by_vin_in_pages_the_newest_certificates_checked_against_another_version_of_the_approval(
    store: CertificateStore, client: httpx.AsyncClient, unique: str
) -> None:
    key, other = f"K|{unique}", f"K2|{unique}"
    vins = [f"V{unique.upper()}{n:02d}" for n in range(5)]
    await store.store_firsts([(certificate(vin, 1, key, OLD), None) for vin in vins[:3]])  # in bulk
    await store.store(certificate(vins[3], 1, key, OLD))
    await store.store(certificate(vins[4], 1, key, OLD))
    await store.store(certificate(vins[4], 2, key, NEW))  # corrected already: its newest names NEW
    await store.store(certificate(f"X{unique.upper()}", 1, other, OLD))  # another approval

    first = (
        await client.get("/v1/certificates", params={"approval_key": key, "other_than": NEW, "limit": 3})
    ).json()
    assert first["total"] == 4
    assert [item["vin"] for item in first["items"]] == vins[:3]
    assert first["items"][0]["revision"] == 1 and first["items"][0]["version_number"] == 1
    assert first["items"][0]["approval_sha256"] == OLD and first["items"][0]["archived_at"]
    second = (
        await client.get(
            "/v1/certificates",
            params={
                "approval_key": key,
                "other_than": NEW,
                "limit": 3,
                "after": first["next"],
                "with_build": "true",
            },
        )
    ).json()
    assert [item["vin"] for item in second["items"]] == [vins[3]]
    assert second["next"] is None
    assert second["items"][0]["build"]["vin"] == vins[3] and second["items"][0]["build"]["revision"] == 1

    alone = (
        await client.get("/v1/certificates", params={"approval_key": key, "other_than": NEW, "limit": 0})
    ).json()
    assert alone == {"total": 4, "items": [], "next": None}  # the total alone, no page read
    everything = (await client.get("/v1/certificates", params={"approval_key": key})).json()
    assert everything["total"] == 5 and len(everything["items"]) == 5
    corrected = (await client.get("/v1/certificates", params={"approval_key": key, "other_than": OLD})).json()
    assert corrected["total"] == 1 and [i["vin"] for i in corrected["items"]] == [vins[4]]
    assert corrected["items"][0]["revision"] == 2


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "approval_key"),
        ({"approval_key": "K", "other_than": "xyz"}, "other_than"),
        ({"approval_key": "K", "limit": "-1"}, "limit"),
        ({"approval_key": "K", "limit": "1001"}, "limit"),
        ({"approval_key": "K", "after": "a'b"}, "after"),
        ({"approval_key": "K", "with_build": "yes"}, "with_build"),
    ],
)
async def test_a_parameter_out_of_bounds_is_refused_in_one_line_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], named: str
) -> None:
    answer = await client.get("/v1/certificates", params=params)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and detail.startswith(f"{named}:") and "\n" not in detail


async def test_the_list_needs_a_token(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/certificates", params={"approval_key": "K"}, headers={"Authorization": ""})
    assert answer.status_code == 401


async def test_certificates_archived_at_once_for_one_approval_version_are_each_counted(
    store: CertificateStore, client: httpx.AsyncClient, unique: str
) -> None:
    key = f"K|{unique}"
    vins = [f"C{unique.upper()}{n:02d}" for n in range(20)]
    await asyncio.gather(*(store.store(certificate(vin, 1, key, OLD)) for vin in vins))
    await asyncio.gather(*(store.store(certificate(vin, 2, key, NEW)) for vin in vins))  # corrected at once

    old = (await client.get("/v1/certificates", params={"approval_key": key, "other_than": NEW})).json()
    new = (await client.get("/v1/certificates", params={"approval_key": key, "other_than": OLD})).json()
    assert (old["total"], len(old["items"])) == (0, 0)
    assert (new["total"], len(new["items"])) == (20, 20)


async def test_heads_kept_before_they_named_their_approval_are_named_from_the_evidence_and_counted(
    store: CertificateStore, client: httpx.AsyncClient, unique: str
) -> None:
    key = f"K|{unique}"
    vins = [f"B{unique.upper()}{n:02d}" for n in range(3)]
    for vin in vins:
        await store.store(certificate(vin, 1, key, OLD))
        await store.heads.update_one(  # as an archive before this version kept it
            {"_id": vin},
            {"$unset": {"approval_key": "", "approval_sha256": "", "version_number": "", "archived_at": ""}},
        )
    await store.counts.delete_many({"approval_key": key})
    assert (await client.get("/v1/certificates", params={"approval_key": key})).json()["total"] == 0

    assert await store.backfill(batch=2) == 3
    listed = (await client.get("/v1/certificates", params={"approval_key": key, "other_than": NEW})).json()
    assert listed["total"] == 3 and [i["vin"] for i in listed["items"]] == vins
    assert listed["items"][0]["version_number"] == 1 and listed["items"][0]["archived_at"]
    assert await store.backfill() == 0  # nothing left to name
