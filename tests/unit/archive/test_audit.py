"""The archive's audit: each certificate against schema, seal, trusted signer and evidence; each VIN's chain."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from devkit.keys import generate_dev_seal
from services.archive.audit import Auditor, Link, chain_breaks
from services.archive.evidence import EvidenceError, bundle
from services.archive.stored_xml import PACKED, packed, xml_of
from services.signing.seal import Seal
from shared.xml import load_ivi_schema

pytestmark = pytest.mark.unit
SHA = {n: hashlib.sha256(str(n).encode()).hexdigest() for n in range(6)}


def links(*revisions: int, gap_at: int | None = None) -> list[Link]:
    made, previous = [], None
    for number, revision in enumerate(revisions, 1):
        made.append(Link(revision, number if revision != gap_at else number + 1, SHA[revision], previous))
        previous = SHA[revision]
    return made


def head(revision: int, revisions: list[int]) -> dict[str, Any]:
    return {"revision": revision, "sha256": SHA[revision], "revisions": revisions}


def test_a_whole_chain_has_no_break() -> None:
    assert chain_breaks(links(1, 3, 4), head(4, [1, 3, 4])) == []


def test_a_certificate_removed_from_the_middle_the_start_or_the_end_breaks_the_chain() -> None:
    whole = links(1, 2, 3)
    middle = [whole[0], whole[2]]
    assert any("does not link to revision 1" in b for b in chain_breaks(middle, head(3, [1, 2, 3])))
    assert any("[1, 3] do not run" in b for b in chain_breaks(middle, head(3, [1, 2, 3])))
    start = whole[1:]
    assert any(
        "links to a certificate that is not there" in b for b in chain_breaks(start, head(3, [1, 2, 3]))
    )
    end = whole[:2]
    assert any("head names revision 3" in b for b in chain_breaks(end, head(3, [1, 2, 3])))
    assert chain_breaks([], head(1, [1])) != []


def test_a_head_without_certificates_or_certificates_without_a_head_are_breaks() -> None:
    assert chain_breaks(links(1), None) == ["the archive keeps no head for this VIN"]


@pytest.fixture(scope="module")
def sealed(unsigned_specimen: bytes) -> tuple[bytes, Any]:
    dev = generate_dev_seal()
    seal = Seal(key=load_pem_private_key(dev.key_pem, None), certificate=dev.certificate)  # type: ignore[arg-type]
    return seal.sign(unsigned_specimen), dev.certificate


def row_of(xml: bytes, vin: str, approval_sha: str = "a" * 64, **evidence: Any) -> dict[str, Any]:
    return {
        "_id": f"{vin}:1",
        "vin": vin,
        "revision": 1,
        "version_number": 1,
        "sha256": hashlib.sha256(xml).hexdigest(),
        "previous_sha256": None,
        "signer_fingerprint": "f",
        **packed(xml),
        "evidence": {
            "build": {"vin": vin, "revision": 1},
            "approval_key": "K",
            "approval_sha256": approval_sha,
            "release": {"policy": "auto", "findings": [], "settled_by": None},
            "trace_id": "0" * 32,
            **evidence,
        },
    }


def vin_of(xml: bytes) -> str:
    return xml.split(b"<VehicleIdentificationNumber>")[1].split(b"<")[0].decode()


def test_an_untouched_certificate_passes_and_each_kind_of_damage_is_named(
    sealed: tuple[bytes, Any], xsd_path: Any
) -> None:
    xml, cert = sealed
    vin = vin_of(xml)
    schema = load_ivi_schema(xsd_path)
    known = {"a" * 64: "a" * 64, "b" * 64: "c" * 64}
    auditor = Auditor(schema, [cert], known.get)
    assert auditor.certificate(row_of(xml, vin)) == []

    altered = xml.replace(b"<ActualMass>", b"<ActualMass>1", 1)
    what = [
        b.what
        for b in auditor.certificate({**row_of(altered, vin), "sha256": hashlib.sha256(xml).hexdigest()})
    ]
    assert any("no longer have the SHA-256" in w for w in what) and any(
        "seal does not verify" in w for w in what
    )
    assert (
        Auditor(schema, [], known.get).certificate(row_of(xml, vin))[0].what.startswith("signer not trusted")
    )
    assert "not stored" in auditor.certificate(row_of(xml, vin, "d" * 64))[0].what
    assert "was altered" in auditor.certificate(row_of(xml, vin, "b" * 64))[0].what
    foreign = auditor.certificate(row_of(xml, vin, build={"vin": "OTHER", "revision": 1}))
    assert [b.vin for b in foreign] == [vin] and "not of this record" in foreign[0].what
    bare = {k: v for k, v in row_of(xml, vin).items() if k != "evidence"}
    assert auditor.certificate(bare)[0].what == "no release evidence kept with it"


def test_the_bundle_lists_each_file_with_its_hash_and_refuses_a_certificate_without_evidence(
    sealed: tuple[bytes, Any],
) -> None:
    xml, _cert = sealed
    vin = vin_of(xml)
    row = row_of(xml, vin)
    deliveries = [{"record_id": f"{vin}:1", "step": "delivered"}, {"record_id": f"{vin}:9", "step": "queued"}]
    data = bundle(row, {"key": "K"}, [row], deliveries)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {n.split("/", 1)[1]: z.read(n) for n in z.namelist()}
    manifest = json.loads(files["manifest.json"])
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    assert all(hashlib.sha256(files[n]).hexdigest() == h for n, h in manifest["files"].items())
    assert files["certificate.xml"] == xml
    assert json.loads(files["deliveries.json"])["deliveries"] == [deliveries[0]]
    assert json.loads(files["chain.json"])["position"] == 0
    assert bundle(row, {"key": "K"}, [row], deliveries) == data, "the same evidence gives the same bytes"
    with pytest.raises(EvidenceError, match="without its evidence"):
        bundle({k: v for k, v in row.items() if k != "evidence"}, None, [], [])


def test_a_late_older_revision_kept_outside_the_chain_is_not_a_break() -> None:
    one, three = Link(1, 1, SHA[1], None), Link(3, 2, SHA[3], SHA[1])
    late = Link(2, 3, SHA[2], None)  # stored after revision 3, linked to nothing (services.archive.chain)
    assert chain_breaks([one, three, late], head(3, [1, 3])) == []
    assert chain_breaks([one, late], head(3, [1, 3])) != []


def test_a_row_archived_before_packing_is_read_as_it_was_kept_and_unreadable_bytes_are_a_break(
    sealed: tuple[bytes, Any], xsd_path: Any
) -> None:
    xml, cert = sealed
    vin = vin_of(xml)
    auditor = Auditor(load_ivi_schema(xsd_path), [cert], {"a" * 64: "a" * 64}.get)
    row = row_of(xml, vin)
    assert xml_of(row) == xml and len(row[PACKED]) < len(xml) / 2
    plain = {**{k: v for k, v in row.items() if k != PACKED}, "xml": xml.decode("utf-8")}
    assert xml_of(plain) == xml and auditor.certificate(plain) == []
    for damaged, why in (
        (row[PACKED][:-40], "cut short"),
        (b"not zlib at all", "not zlib"),
        ("text", "not bytes"),
    ):
        what = [b.what for b in auditor.certificate({**row, PACKED: damaged})]
        assert len(what) == 1 and what[0].startswith("its stored bytes cannot be read"), what
        assert why in what[0]
    bomb = {**row, PACKED: zlib.compress(b" " * (17 * 1024 * 1024))}
    assert "at most" in auditor.certificate(bomb)[0].what
