"""The seal per approval holder: the registry's contract, the choice of seal, waiting for a missing one."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from devkit.approvals import approval, types
from devkit.seals import holder_seal, write_holder_seal
from services.signing.adapters.keys import SealHolder, registered_opener
from services.signing.registry import SEAL_MISSING, Missing, SealBook
from services.signing.seal import Seal, verify
from services.signing.settings import SigningSettings
from services.signing.subscribers import Sealing
from shared import topics
from shared.contracts import Owner
from shared.contracts.events import Document, State, StatusEvent
from shared.contracts.seals import SealRegistration, holder_of
from shared.seal_table import SealTable
from shared.stage import Stage
from tests.unit.shared.runtime_fakes import Recording

pytestmark = pytest.mark.unit

KAROO, MOPANI = "KAROO MOTOR WORKS (PTY) LTD", "MOPANI UTILITY VEHICLES (PTY) LTD"
NOW = dt.datetime.now(dt.UTC)


def registration(holder: str, cert_pem: bytes, key_file: Path | None, **more: object) -> SealRegistration:
    return SealRegistration.model_validate(
        {
            "holder": holder,
            "certificate_pem": cert_pem.decode(),
            "key_file": str(key_file) if key_file else None,
            "set_by": "integration tester",
            "set_at": more.pop("set_at", NOW),
            **more,
        }
    )


def test_the_holder_of_an_approval_is_the_manufacturer_it_names_in_capitals_with_blanks_collapsed() -> None:
    karoo, mopani = types()[0], types()[3]
    assert holder_of(approval(karoo, karoo.variants[0], karoo.variants[0].versions[0])) == KAROO
    assert holder_of(approval(mopani, mopani.variants[0], mopani.variants[0].versions[0])) == MOPANI
    named = approval(karoo, karoo.variants[0], karoo.variants[0].versions[0])
    bare = named.model_copy(update={"certificate": {}})
    assert holder_of(bare) is None


def test_a_registration_names_exactly_one_key_an_absolute_path_and_a_pem_certificate() -> None:
    seal = holder_seal(KAROO)
    with pytest.raises(ValidationError, match="exactly one of key_file and pkcs11_key"):
        registration(KAROO, seal.cert_pem, None)
    with pytest.raises(ValidationError, match="absolute path"):
        registration(KAROO, seal.cert_pem, Path("relative/seal.key"))
    with pytest.raises(ValidationError, match="certificate_pem"):
        registration(KAROO, b"not a certificate", Path("/k.key"))
    assert registration(" karoo  motor works (pty) ltd ", seal.cert_pem, Path("/k.key")).holder == KAROO


def test_the_seal_table_lists_days_to_expiry_and_warns_from_thirty_days() -> None:
    soon, later = holder_seal(KAROO, days=20), holder_seal(MOPANI, days=400)
    table = SealTable(
        [
            registration(KAROO, soon.cert_pem, Path("/a.key")),
            registration(MOPANI, later.cert_pem, Path("/b.key")),
        ]
    )
    rows = table.rows(NOW)
    assert [(row.holder, row.warning) for row in rows] == [(KAROO, True), (MOPANI, False)]
    assert rows[0].days_left in (19, 20) and "O=KAROO MOTOR WORKS (PTY) LTD" in rows[0].subject


def sealed(tmp_path: Path, holder: str, name: str) -> tuple[SealRegistration, Seal]:
    key, cert = write_holder_seal(tmp_path, holder, name)
    reg = registration(holder, cert.read_bytes(), key)
    return reg, Seal.from_pem(key.read_bytes(), cert.read_bytes())


def test_each_holder_gets_its_own_seal_and_the_default_serves_only_its_holder_when_one_is_named(
    tmp_path: Path,
) -> None:
    _, karoo_seal = sealed(tmp_path, KAROO, "karoo")
    book = SealBook(default=karoo_seal, default_holder="karoo motor works (pty) ltd")
    missing = book.choose(MOPANI)
    assert isinstance(missing, Missing) and missing.finding().code == SEAL_MISSING
    assert missing.finding().owner == Owner.INTEGRATION
    assert book.choose(KAROO) is karoo_seal and book.choose(None) is karoo_seal
    mopani_reg, _ = sealed(tmp_path, MOPANI, "mopani")
    assert book.take(mopani_reg, registered_opener(SigningSettings()))
    chosen = book.choose(MOPANI)
    assert isinstance(chosen, Seal) and chosen.fingerprint == mopani_reg.fingerprint


def test_without_a_default_holder_the_one_seal_serves_every_holder_as_before_the_registry(
    tmp_path: Path,
) -> None:
    _, one = sealed(tmp_path, KAROO, "one")
    book = SealBook(default=one)
    assert book.choose(MOPANI) is one and book.choose(KAROO) is one and book.choose(None) is one


def test_a_newer_registration_rotates_the_seal_and_an_older_one_arriving_late_does_not(
    tmp_path: Path,
) -> None:
    first, _ = sealed(tmp_path, MOPANI, "first")
    key, cert = write_holder_seal(tmp_path, MOPANI, "second")
    second = registration(MOPANI, cert.read_bytes(), key, set_at=NOW + dt.timedelta(minutes=1))
    book, opener = SealBook(), registered_opener(SigningSettings())
    assert book.take(first, opener) and book.take(second, opener)
    assert not book.take(first, opener)  # read again from the topic's beginning: older, ignored
    chosen = book.choose(MOPANI)
    assert isinstance(chosen, Seal) and chosen.fingerprint == second.fingerprint
    assert len(book.retired) == 1


def test_a_registered_key_file_others_may_read_leaves_the_holder_without_a_seal_saying_why(
    tmp_path: Path,
) -> None:
    reg, _ = sealed(tmp_path, MOPANI, "open")
    (tmp_path / "open.key").chmod(0o644)
    book = SealBook()
    book.take(reg, registered_opener(SigningSettings()))
    missing = book.choose(MOPANI)
    assert isinstance(missing, Missing) and "readable by others" in missing.reason


@dataclass
class FakeWaiting:
    """``WaitingDocuments`` in memory."""

    kept: dict[str, tuple[str, Document]] = field(default_factory=dict)
    holders: set[str] = field(default_factory=set)

    async def setup(self) -> None:
        pass

    async def keep(self, document: Document, holder: str) -> None:
        known = self.kept.get(document.vin)
        if known is None or known[1].revision <= document.revision:
            self.kept[document.vin] = (holder, document)
        self.holders.add(holder)

    async def of_holder(self, holder: str) -> list[Document]:
        return [doc for named, doc in self.kept.values() if named == holder]

    async def done(self, document: Document) -> None:
        known = self.kept.get(document.vin)
        if known is not None and known[1].revision <= document.revision:
            del self.kept[document.vin]


def document(unsigned: bytes, vin: str, holder: str) -> Document:
    return Document(
        record_id=f"{vin}:1",
        vin=vin,
        revision=1,
        version_number=1,
        xml=unsigned.decode(),
        sha256="0" * 64,
        seal_holder=holder,
    )


def test_a_record_without_its_holders_seal_waits_blocked_for_integration_then_is_sealed_with_it(
    tmp_path: Path, unsigned_specimen: bytes
) -> None:
    karoo_reg, karoo_seal = sealed(tmp_path, KAROO, "karoo")
    stage = Stage("signing", SigningSettings())
    stage.publisher(topics.SIGNED, Document)
    sent = Recording()
    stage.emitter.outbound = sent
    waiting = FakeWaiting()
    book = SealBook(default=karoo_seal, default_holder=KAROO)
    sealing = Sealing(stage, SealHolder(seal=karoo_seal), book, waiting, registered_opener(stage.settings))  # type: ignore[arg-type]

    async def run() -> None:
        await sealing.on_rendered(document(unsigned_specimen, "KAROO000000000001", KAROO))
        await sealing.on_rendered(document(unsigned_specimen, "MOPANI00000000001", MOPANI))
        assert set(waiting.kept) == {"MOPANI00000000001"}
        mopani_reg, _ = sealed(tmp_path, MOPANI, "mopani")
        await sealing.on_seal(mopani_reg)
        await sealing.release_due()

    asyncio.run(run())
    statuses = [
        (e.vin, e.state, [f.code for f in e.findings]) for e in sent.models(topics.STATUS, StatusEvent)
    ]
    assert statuses == [
        ("KAROO000000000001", State.SIGNED, []),
        ("MOPANI00000000001", State.BLOCKED, [SEAL_MISSING]),
        ("MOPANI00000000001", State.SIGNED, []),
    ]
    blocked = sent.models(topics.STATUS, StatusEvent)[1]
    assert blocked.owner == Owner.INTEGRATION
    signed = {d.vin: d for d in sent.models(topics.SIGNED, Document)}
    assert signed["KAROO000000000001"].signer_fingerprint == karoo_reg.fingerprint
    mopani = signed["MOPANI00000000001"]
    result = verify(mopani.xml.encode())
    assert result.valid and result.certificate is not None
    assert "O=MOPANI UTILITY VEHICLES (PTY) LTD" in result.certificate.subject.rfc4514_string()
    assert not waiting.kept and not waiting.holders


def test_a_registration_releases_documents_another_instance_kept(
    tmp_path: Path, unsigned_specimen: bytes
) -> None:
    _, karoo_seal = sealed(tmp_path, KAROO, "karoo")
    stage = Stage("signing", SigningSettings())
    stage.publisher(topics.SIGNED, Document)
    sent = Recording()
    stage.emitter.outbound = sent
    waiting = FakeWaiting()
    book = SealBook(default=karoo_seal, default_holder=KAROO)
    sealing = Sealing(stage, SealHolder(seal=karoo_seal), book, waiting, registered_opener(stage.settings))  # type: ignore[arg-type]
    kept_elsewhere = document(unsigned_specimen, "MOPANI00000000002", MOPANI)
    waiting.kept[kept_elsewhere.vin] = (MOPANI, kept_elsewhere)  # this instance never saw it

    async def run() -> None:
        await sealing.on_seal(sealed(tmp_path, MOPANI, "mopani")[0])
        await sealing.release_due()

    asyncio.run(run())
    assert [d.vin for d in sent.models(topics.SIGNED, Document)] == ["MOPANI00000000002"]
    assert not waiting.kept
