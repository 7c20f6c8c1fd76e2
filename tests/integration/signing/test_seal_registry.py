"""The seal registry on the local Kafka, and the documents waiting for a seal in the local FerretDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cli.main import main as coc
from devkit.seals import write_holder_seal
from services.signing.adapters.waiting import WaitingDocuments
from shared.contracts.events import Document
from shared.mongo import MongoDoc
from shared.settings import CocSettings

pytestmark = pytest.mark.integration


def document(vin: str, revision: int) -> Document:
    return Document(
        record_id=f"{vin}:{revision}",
        vin=vin,
        revision=revision,
        version_number=revision,
        xml=f"<r>{revision}</r>",
        sha256="0" * 64,
        seal_holder="HOLDER",
    )


async def test_a_waiting_document_is_replaced_by_a_newer_revision_never_by_an_older_and_leaves_once_sealed(
    test_db: AsyncDatabase[MongoDoc], unique: str
) -> None:
    waiting = WaitingDocuments(test_db)
    vin, other = f"W{unique}A", f"W{unique}B"
    await waiting.keep(document(vin, 2), "HOLDER")
    await waiting.keep(document(vin, 1), "HOLDER")  # late, older: superseded
    await waiting.keep(document(other, 1), "OTHER")
    assert [(d.vin, d.revision) for d in await waiting.of_holder("HOLDER")] == [(vin, 2)]
    again = WaitingDocuments(test_db)
    await again.setup()
    assert again.holders == {"HOLDER", "OTHER"}  # a restart learns who waits
    await waiting.done(document(vin, 1))  # an older revision sealed: the newer still waits
    assert len(await waiting.of_holder("HOLDER")) == 1
    await waiting.done(document(vin, 2))
    assert await waiting.of_holder("HOLDER") == []
    assert await waiting.count() == 1


def test_coc_seals_add_registers_a_holders_seal_and_a_newer_one_replaces_it_in_the_list(
    settings: CocSettings, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = f"INTEGRATION TEST {unique.upper()} LTD"
    fingerprints = []
    for name in ("first", "second"):
        key, cert = write_holder_seal(tmp_path, holder, name, days=20 if name == "second" else 400)
        args = [
            "seals",
            "add",
            holder,
            "--cert",
            str(cert),
            "--key-file",
            str(key),
            "--by",
            "integration test",
        ]
        assert coc(args) == 0
        fingerprints.append(capsys.readouterr().out.split("sha256 ")[1].split(",")[0])
    assert coc(["seals", "list", "--json"]) == 0
    listed = {row["holder"]: row for row in json.loads(capsys.readouterr().out)}
    row = listed[holder]
    assert row["fingerprint"] == fingerprints[1] != fingerprints[0]
    assert row["warning"] is True and row["days_left"] in (19, 20)
    assert coc(["seals", "withdraw", holder, "--by", "integration test"]) == 0  # leave no usable test seal
    capsys.readouterr()
    assert (
        coc(["seals", "add", "x", "--cert", str(tmp_path / "none.crt"), "--token-key", "k", "--by", "t"]) == 2
    )
    assert "--cert: no file" in capsys.readouterr().err
