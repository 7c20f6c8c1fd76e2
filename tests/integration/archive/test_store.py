"""The archive's certificate store on the real FerretDB: stored once, chained per VIN, head only forward."""

from __future__ import annotations

import hashlib

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.archive.adapters.store import CertificateStore
from services.archive.chain import Head, receipt_for
from services.archive.stored_xml import packed, xml_of
from shared.contracts.events import Document, now
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(test_db: AsyncDatabase[MongoDoc]) -> CertificateStore:
    """A store on a database of this test only, dropped afterwards."""
    made = CertificateStore(test_db)
    await made.setup()
    return made


@pytest.fixture
def vin(unique: str) -> str:
    return f"WVW{unique.upper()}"


def document(vin: str, revision: int, version_number: int | None = None) -> Document:
    xml = f"<IVI><VIN>{vin}</VIN><Revision>{revision}</Revision></IVI>"
    return Document(
        record_id=f"{vin}:{revision}",
        vin=vin,
        revision=revision,
        version_number=version_number or revision,
        xml=xml,
        sha256=hashlib.sha256(xml.encode()).hexdigest(),
        signer_fingerprint="ab" * 32,
    )


async def test_first_certificate_of_a_vin_links_to_no_previous_certificate(
    store: CertificateStore, vin: str
) -> None:
    first = document(vin, 1)
    receipt = await store.store(first)

    assert (receipt.record_id, receipt.vin, receipt.revision) == (f"{vin}:1", vin, 1)
    assert receipt.sha256 == first.sha256
    assert receipt.previous_sha256 is None
    assert receipt.signer_fingerprint == "ab" * 32
    assert await store.head(vin) == Head(1, first.sha256, (1,))
    stored = await store.get(vin)
    assert stored is not None
    assert (stored["_id"], xml_of(stored).decode(), stored["version_number"]) == (f"{vin}:1", first.xml, 1)


async def test_next_revision_links_to_the_sha256_of_the_previous_certificate(
    store: CertificateStore, vin: str
) -> None:
    first, second, third = document(vin, 1), document(vin, 2), document(vin, 3)
    await store.store(first)
    receipt_2 = await store.store(second)
    receipt_3 = await store.store(third)

    assert receipt_2.previous_sha256 == first.sha256
    assert receipt_3.previous_sha256 == second.sha256
    assert await store.head(vin) == Head(3, third.sha256, (1, 2, 3))
    stored = await store.get(vin, 2)
    assert stored is not None and stored["previous_sha256"] == first.sha256


async def test_redelivered_document_is_stored_once_and_gets_the_receipt_of_its_first_delivery(
    store: CertificateStore, vin: str
) -> None:
    first = document(vin, 1)
    receipt = await store.store(first)
    again = await store.store(first)

    assert again == receipt  # same archived_at, same link
    assert await store.certificates.count_documents({"vin": vin}) == 1
    assert await store.head(vin) == Head(1, first.sha256, (1,))


async def test_redelivery_of_an_older_revision_keeps_its_link_and_leaves_the_head_on_the_newest(
    store: CertificateStore, vin: str
) -> None:
    first, second = document(vin, 1), document(vin, 2)
    await store.store(first)
    await store.store(second)

    again = await store.store(second)
    assert again.previous_sha256 == first.sha256
    redelivered_first = await store.store(first)
    assert redelivered_first.previous_sha256 is None
    assert await store.head(vin) == Head(2, second.sha256, (1, 2))
    assert await store.certificates.count_documents({"vin": vin}) == 2


async def test_late_older_revision_is_kept_without_moving_the_head_back(
    store: CertificateStore, vin: str
) -> None:
    first, second, third = document(vin, 1), document(vin, 2), document(vin, 3)
    await store.store(first)
    await store.store(third)
    late = await store.store(second)

    assert late.previous_sha256 is None  # not the next link of the chain
    assert await store.head(vin) == Head(3, third.sha256, (1, 3))
    newest = await store.get(vin)
    assert newest is not None and newest["_id"] == f"{vin}:3"
    kept = await store.get(vin, 2)
    assert kept is not None and kept["sha256"] == second.sha256


async def test_get_returns_the_asked_revision_and_none_for_what_was_never_stored(
    store: CertificateStore, vin: str
) -> None:
    first, second = document(vin, 1, version_number=1), document(vin, 2, version_number=2)
    await store.store(first)
    await store.store(second)

    older = await store.get(vin, 1)
    assert older is not None
    assert (older["revision"], xml_of(older).decode(), older["version_number"]) == (1, first.xml, 1)
    newest = await store.get(vin)
    assert newest is not None and (newest["revision"], xml_of(newest).decode()) == (2, second.xml)
    assert await store.get(vin, 3) is None
    assert await store.get(f"{vin}X") is None
    assert await store.get(f"{vin}X", 1) is None


async def test_head_left_behind_by_a_crash_after_the_insert_is_moved_on_by_the_redelivery(
    store: CertificateStore, vin: str
) -> None:
    first, second = document(vin, 1), document(vin, 2)
    await store.store(first)
    # The crash: revision 2's certificate is written, the head is not.
    written = receipt_for(second, await store.head(vin), now())
    await store.certificates.insert_one(
        {
            "_id": second.record_id,
            **written.model_dump(mode="python"),
            "version_number": second.version_number,
            **packed(second.xml.encode()),
        }
    )
    assert await store.head(vin) == Head(1, first.sha256, (1,))

    receipt = await store.store(second)

    assert receipt.previous_sha256 == first.sha256
    assert await store.head(vin) == Head(2, second.sha256, (1, 2))
    newest = await store.get(vin)
    assert newest is not None and newest["_id"] == f"{vin}:2"
    assert await store.certificates.count_documents({"vin": vin}) == 2


async def test_first_certificates_stored_in_bulk_start_their_chains_and_others_take_the_single_path(
    store: CertificateStore, vin: str
) -> None:
    old, new_a, new_b = f"{vin}A", f"{vin}B", f"{vin}C"
    await store.store(document(old, 1))
    batch = [document(new_a, 1), document(new_a, 2), document(old, 2), document(new_b, 3, version_number=1)]

    # new_a:1 and new_b:3 start their chains; new_a:2 and old:2 are stored in bulk as the next links
    assert await store.store_firsts([(d, "1f" * 16) for d in batch]) == 4

    receipts = [await store.store(d) for d in batch]
    assert [r.previous_sha256 for r in receipts] == [None, batch[0].sha256, document(old, 1).sha256, None]
    assert await store.head(new_a) == Head(2, batch[1].sha256, (1, 2))
    assert await store.head(new_b) == Head(3, batch[3].sha256, (3,))
    assert await store.head(old) == Head(2, batch[2].sha256, (1, 2))
    stored = await store.get(new_b, 3)
    assert stored is not None and xml_of(stored).decode() == batch[3].xml and stored["version_number"] == 1
    # Another process (nothing in memory) gets the same receipts from what was stored.
    again = CertificateStore(store.certificates.database)
    assert [await again.store(d) for d in batch] == receipts
    # The batch comes again: nothing is stored twice.
    assert await store.store_firsts([(d, None) for d in batch]) == 0
    assert await store.certificates.count_documents({"vin": new_a}) == 2


async def test_next_links_stored_in_bulk_are_chained_counted_and_a_moved_head_leaves_its_certificate_to_the_single_path(
    store: CertificateStore, vin: str
) -> None:
    vins = [f"{vin}{n}" for n in range(3)]
    firsts = [document(v, 1) for v in vins]
    await store.store_firsts([(d, None) for d in firsts])
    nexts = [document(v, 2) for v in vins]
    moved = document(vins[2], 3)
    await store.store(moved)  # vins[2]'s head moved on before the batch: its revision 2 is a late one

    assert await store.store_firsts([(d, None) for d in nexts]) == 2
    assert [await store.head(v) for v in vins[:2]] == [Head(2, n.sha256, (1, 2)) for n in nexts[:2]]
    receipts = [await store.store(d) for d in nexts]
    assert [r.previous_sha256 for r in receipts[:2]] == [f.sha256 for f in firsts[:2]]
    assert receipts[2].previous_sha256 is None  # older than its head: links to nothing
    assert await store.head(vins[2]) == Head(3, moved.sha256, (1, 3))


async def test_a_first_certificate_sent_after_later_ones_is_taken_back_and_linked_after_them(
    store: CertificateStore, vin: str
) -> None:
    # Revision 1 went to the dead-letter queue and revision 2 was archived first; 1 comes back later.
    late_first, second = document(vin, 1), document(vin, 2, version_number=2)
    await store.store(second)

    assert await store.store_firsts([(late_first, None)]) == 0  # its head was refused: taken back
    receipt = await store.store(late_first)
    assert receipt.previous_sha256 is None  # older than the head: links to nothing, head stays
    assert await store.head(vin) == Head(2, second.sha256, (2,))
    assert await store.certificates.count_documents({"vin": vin}) == 2
