"""The pending store on the real FerretDB keeps each record id's content fingerprint and judges a resend by it."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from devkit.samples import generate
from services.validation.adapters.pending import PendingStore
from services.validation.revisions import FINGERPRINTS_KEPT, Kept, fingerprint, judged
from shared.contracts import Finding
from shared.contracts.events import AcceptedRecord, State
from shared.contracts.findings import REVISION_REUSED
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

SAMPLE = generate(vehicles=1, seed=9, defect_share=0.0).builds[0]


@pytest.fixture
async def pending(test_db: AsyncDatabase[MongoDoc]) -> PendingStore:
    made = PendingStore(test_db["validation_pending"])
    await made.setup()
    return made


def accepted(unique: str, revision: int = 1, mass: int = 1574) -> AcceptedRecord:
    build = SAMPLE.model_copy(
        update={"vin": f"WVW{unique.upper()}01", "revision": revision, "actual_mass_kg": mass}
    )
    return AcceptedRecord(record_id=build.record_id, received_at=SAMPLE.released_at, build=build)


async def test_a_saved_fingerprint_is_kept_and_judges_a_resend_of_its_record_id(
    pending: PendingStore, unique: str
) -> None:
    first = accepted(unique)
    await pending.save(first.build, State.VALIDATED, False, fingerprint=fingerprint(first))

    kept = await pending.kept(first.build.vin)
    assert kept == Kept(first.build, {1: fingerprint(first)})
    assert judged(first.build, fingerprint(first), kept) == first.build
    heavier = accepted(unique, mass=1611)
    verdict = judged(heavier.build, fingerprint(heavier), kept)
    assert isinstance(verdict, Finding) and verdict.code == REVISION_REUSED
    assert "revision 2" in verdict.message
    assert await pending.kept(f"WVW{unique.upper()}99") is None


async def test_fingerprints_of_earlier_revisions_survive_later_saves_and_a_save_without_one(
    pending: PendingStore, unique: str
) -> None:
    first, second = accepted(unique), accepted(unique, revision=2, mass=1611)
    assert await pending.save_new(
        [(first.build, State.BLOCKED, True, None)], {first.record_id: fingerprint(first)}
    ) == {first.build.vin}
    await pending.save(second.build, State.NEEDS_REVIEW, True, fingerprint=fingerprint(second))
    await pending.save(second.build, State.VALIDATED, False, reviewed_by="a.reviewer")  # a review: no content

    kept = await pending.kept(first.build.vin)
    assert kept is not None and kept.build == second.build
    assert kept.fingerprints == {1: fingerprint(first), 2: fingerprint(second)}
    # Revision 1 sent again with revision 2's content: refused, the next free revision is 3.
    late = accepted(unique, revision=1, mass=1611)
    verdict = judged(late.build, fingerprint(late), kept)
    assert isinstance(verdict, Finding) and "revision 3" in verdict.message
    # An older revision refused as superseded leaves the fingerprints alone.
    assert await pending.save(first.build, State.VALIDATED, False, fingerprint="0" * 64) is False
    assert (await pending.kept(first.build.vin)) == kept


async def test_a_vin_keeps_the_fingerprints_of_its_newest_revisions_only(
    pending: PendingStore, unique: str
) -> None:
    vin = f"WVW{unique.upper()}01"
    stored = {str(r): f"{r:064x}" for r in range(1, FINGERPRINTS_KEPT + 1)}
    await pending.collection.insert_one(
        {"_id": vin, "revision": FINGERPRINTS_KEPT, "build": {}, "fingerprints": stored}
    )
    newest = accepted(unique, revision=FINGERPRINTS_KEPT + 1)

    await pending.save(newest.build, State.VALIDATED, False, fingerprint=fingerprint(newest))

    doc = await pending.collection.find_one({"_id": vin})
    assert doc is not None and len(doc["fingerprints"]) == FINGERPRINTS_KEPT
    assert "1" not in doc["fingerprints"] and doc["fingerprints"][str(FINGERPRINTS_KEPT + 1)] == fingerprint(
        newest
    )
