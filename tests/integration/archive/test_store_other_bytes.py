"""The archive on the real FerretDB never answers "archived" for bytes other than the ones it keeps."""

from __future__ import annotations

import hashlib

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from devkit.keys import generate_dev_seal
from services.archive.adapters.store import CertificateStore, OtherCertificate
from services.archive.chain import Head
from services.archive.stored_xml import xml_of
from services.signing.seal import Seal
from shared.contracts.events import Document
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(test_db: AsyncDatabase[MongoDoc]) -> CertificateStore:
    made = CertificateStore(test_db)
    await made.setup()
    return made


@pytest.fixture(scope="module")
def ecdsa() -> Seal:
    """Seals the same document with other bytes each time."""
    dev = generate_dev_seal("ecdsa-p256")
    return Seal.from_pem(dev.key_pem, dev.cert_pem)


def sealed(seal: Seal, vin: str, mass: int) -> Document:
    signed = seal.sign(f"<IVI><VIN>{vin}</VIN><ActualMass>{mass}</ActualMass></IVI>".encode())
    return Document(
        record_id=f"{vin}:1",
        vin=vin,
        revision=1,
        version_number=1,
        xml=signed.decode(),
        sha256=hashlib.sha256(signed).hexdigest(),
        signer_fingerprint=seal.fingerprint,
    )


async def test_other_bytes_for_an_archived_record_id_are_refused_and_the_kept_ones_stay(
    store: CertificateStore, ecdsa: Seal, unique: str
) -> None:
    vin = f"WVW{unique.upper()}"
    first = sealed(ecdsa, vin, 1574)
    kept = await store.store(first)

    with pytest.raises(OtherCertificate, match=rf"{vin}:1 is archived already as SHA-256 {kept.sha256}"):
        await store.store(sealed(ecdsa, vin, 1611))

    row = await store.get(vin, 1)
    assert row is not None and xml_of(row) == first.xml.encode() and row["sha256"] == first.sha256
    assert await store.certificates.count_documents({"vin": vin}) == 1
    assert await store.head(vin) == Head(1, first.sha256, (1,))


async def test_the_same_document_again_gets_the_kept_receipt_in_its_bytes_or_sealed_anew(
    store: CertificateStore, ecdsa: Seal, unique: str
) -> None:
    vin = f"WVW{unique.upper()}"
    first = sealed(ecdsa, vin, 1574)
    kept = await store.store(first)
    resealed = sealed(ecdsa, vin, 1574)
    assert resealed.sha256 != first.sha256

    assert await store.store(first) == kept
    assert await store.store(resealed) == kept  # the receipt names the kept bytes
    assert await store.certificates.count_documents({"vin": vin}) == 1


async def test_a_batch_first_stored_in_bulk_is_not_the_answer_for_other_bytes_of_its_record_id(
    store: CertificateStore, ecdsa: Seal, unique: str
) -> None:
    vin = f"WVW{unique.upper()}"
    first, other = sealed(ecdsa, vin, 1574), sealed(ecdsa, vin, 1611)
    assert await store.store_firsts([(first, None)]) == 1

    with pytest.raises(OtherCertificate):
        await store.store(other)
    assert (await store.store(first)).sha256 == first.sha256
