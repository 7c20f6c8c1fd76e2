"""`coc audit` on the real FerretDB checks the workspace's audit log too: an altered or deleted entry is named, exit 1."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cli.main import main
from devkit.keys import generate_dev_seal
from services.workspace.adapters.audit import CHAIN, COLLECTION, AuditLog
from services.workspace.identity import Person, PersonRole
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
REVIEWER = Person("Rita Reviewer", frozenset({PersonRole.REVIEWER}))


@pytest.fixture
async def audited(
    test_db: AsyncDatabase[MongoDoc], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[str]:
    """Five reviews in this test's audit log (its archive empty); the arguments of `coc audit` on that database."""
    monkeypatch.setenv("COC_MONGO_DB", test_db.name)
    monkeypatch.delenv("COC_TRUST_DIR", raising=False)
    cert = tmp_path / "seal.crt"
    cert.write_bytes(generate_dev_seal().cert_pem)
    log = AuditLog(test_db[COLLECTION])
    for n in range(5):
        await log.record(REVIEWER, "review:accept", f"record:VIN{n}", {"comment": f"ok {n}"}, T0)
    return ["audit", "--cert", str(cert)]


async def coc(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = await asyncio.to_thread(main, argv)  # main runs its own event loop
    return code, capsys.readouterr().out


async def test_an_untouched_audit_log_passes_and_its_head_is_shown(
    audited: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await coc([*audited, "--json"], capsys)

    assert code == 0, out
    log = json.loads(out)["audit_log"]
    assert (log["entries"], log["head_seq"], log["breaks"]) == (5, 5, [])
    assert len(log["head_sha256"]) == 64


async def test_one_altered_audit_entry_fails_the_audit_naming_that_entry(
    audited: list[str], test_db: AsyncDatabase[MongoDoc], capsys: pytest.CaptureFixture[str]
) -> None:
    await test_db[CHAIN].update_one({"_id": 3}, {"$set": {"change": '{"comment": "rejected"}'}})

    code, out = await coc(audited, capsys)

    assert code == 1
    assert "BROKEN audit log entry 3: entry 3 was altered: 2026-12-07T09:00:00.000+00:00 Rita Reviewer" in out
    assert "audit log: BROKEN at entry 3" in out


async def test_one_deleted_audit_entry_fails_the_audit_naming_that_entry(
    audited: list[str], test_db: AsyncDatabase[MongoDoc], capsys: pytest.CaptureFixture[str]
) -> None:
    await test_db[CHAIN].delete_one({"_id": 2})

    code, out = await coc([*audited, "--json"], capsys)

    assert code == 1
    assert json.loads(out)["audit_log"]["breaks"] == [
        {"seq": 2, "kind": "missing", "what": "entry 2 is missing (entry 3 follows entry 1)"}
    ]
