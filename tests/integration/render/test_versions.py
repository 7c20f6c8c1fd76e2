"""IviVersionNumber on the real FerretDB: one number per record id, counted per VIN, races settled."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.render.adapters.versions import VersionNumbers
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

RACES = 16


@pytest.fixture
async def numbers(test_db: AsyncDatabase[MongoDoc]) -> VersionNumbers:
    """Version numbers on a database of this test only, dropped afterwards."""
    made = VersionNumbers(test_db)
    await made.setup()
    return made


@pytest.fixture
def vin(unique: str) -> str:
    return f"WVW{unique.upper()}"


async def test_first_record_of_a_vin_gets_1_and_a_later_revision_gets_2(
    numbers: VersionNumbers, vin: str
) -> None:
    assert await numbers.number_for(f"{vin}:1", vin) == 1
    assert await numbers.number_for(f"{vin}:2", vin) == 2
    assert await numbers.counters.find_one({"_id": vin}) == {"_id": vin, "last": 2}


async def test_redelivered_record_gets_the_number_it_was_given_first(
    numbers: VersionNumbers, vin: str
) -> None:
    await numbers.number_for(f"{vin}:1", vin)
    await numbers.number_for(f"{vin}:2", vin)

    assert await numbers.number_for(f"{vin}:1", vin) == 1
    assert await numbers.number_for(f"{vin}:2", vin) == 2
    assert await numbers.versions.count_documents({"vin": vin}) == 2
    assert await numbers.number_for(f"{vin}:3", vin) == 3


async def test_revision_that_never_reached_render_takes_no_number(numbers: VersionNumbers, vin: str) -> None:
    assert await numbers.number_for(f"{vin}:1", vin) == 1
    assert await numbers.number_for(f"{vin}:4", vin) == 2


async def test_two_vins_are_counted_independently(numbers: VersionNumbers, vin: str) -> None:
    other = f"{vin}X"
    assert await numbers.number_for(f"{vin}:1", vin) == 1
    assert await numbers.number_for(f"{vin}:2", vin) == 2
    assert await numbers.number_for(f"{other}:1", other) == 1
    assert await numbers.number_for(f"{vin}:3", vin) == 3
    assert await numbers.number_for(f"{other}:2", other) == 2


async def test_concurrent_deliveries_of_two_revisions_of_one_vin_get_distinct_numbers(
    numbers: VersionNumbers, vin: str
) -> None:
    vins = [f"{vin}{n}" for n in range(RACES)]  # one race per VIN, run together so a lost race shows

    outcomes = await asyncio.gather(
        *(numbers.number_for(f"{each}:{revision}", each) for each in vins for revision in (1, 2)),
        return_exceptions=True,  # every delivery ends before the database is dropped
    )

    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    given = [o for o in outcomes if isinstance(o, int)]
    per_vin = [given[i : i + 2] for i in range(0, len(given), 2)]
    assert all(sorted(pair) == [1, 2] for pair in per_vin), per_vin
    for each, (first, second) in zip(vins, per_vin, strict=True):
        assert await numbers.counters.find_one({"_id": each}) == {"_id": each, "last": 2}
        assert await numbers.number_for(f"{each}:1", each) == first
        assert await numbers.number_for(f"{each}:2", each) == second


async def test_concurrent_deliveries_of_one_record_get_one_number(numbers: VersionNumbers, vin: str) -> None:
    vins = [f"{vin}{n}" for n in range(RACES)]

    given = await asyncio.gather(
        *(numbers.number_for(f"{each}:1", each) for each in vins for _ in range(3)), return_exceptions=True
    )

    assert given == [1] * 3 * RACES
    assert await numbers.versions.count_documents({}) == RACES


async def test_counter_left_behind_by_a_crash_does_not_give_a_used_number_again(
    numbers: VersionNumbers, vin: str
) -> None:
    # The crash: the number of revision 1 is written, the VIN's counter is not.
    await numbers.versions.insert_one({"_id": f"{vin}:1", "vin": vin, "number": 1})

    assert await numbers.number_for(f"{vin}:2", vin) == 2
    assert await numbers.number_for(f"{vin}:1", vin) == 1
    assert await numbers.counters.find_one({"_id": vin}) == {"_id": vin, "last": 2}


async def test_first_records_claimed_in_bulk_get_1_and_a_vin_already_numbered_is_left_to_number_for(
    numbers: VersionNumbers, vin: str
) -> None:
    old, new_a, new_b = f"{vin}A", f"{vin}B", f"{vin}C"
    assert await numbers.number_for(f"{old}:1", old) == 1

    claimed = await numbers.claim_firsts([(f"{old}:2", old), (f"{new_a}:1", new_a), (f"{new_b}:3", new_b)])

    assert claimed == 3  # the VIN that has number 1 keeps it, and its later record gets 2 in the batch
    assert await numbers.counters.find_one({"_id": new_a}) == {"_id": new_a, "last": 1}
    assert await numbers.number_for(f"{new_a}:1", new_a) == 1
    assert await numbers.number_for(f"{new_b}:3", new_b) == 1
    assert await numbers.number_for(f"{old}:2", old) == 2
    assert await numbers.versions.count_documents({"vin": old}) == 2
    # Another process (no claims in memory) reads the same numbers, and counts on from them.
    other = VersionNumbers(numbers.versions.database)
    assert await other.number_for(f"{new_a}:1", new_a) == 1
    assert await other.number_for(f"{new_a}:2", new_a) == 2


async def test_a_batch_claimed_again_after_a_fault_keeps_its_numbers(
    numbers: VersionNumbers, vin: str
) -> None:
    await numbers.claim_firsts([(f"{vin}:1", vin)])
    assert await numbers.number_for(f"{vin}:1", vin) == 1
    # The batch comes again (its commit was lost): nothing is claimed twice, the number stays.
    assert await numbers.claim_firsts([(f"{vin}:1", vin)]) == 0
    assert await numbers.number_for(f"{vin}:1", vin) == 1
    assert await numbers.number_for(f"{vin}:2", vin) == 2


async def test_a_claim_whose_counter_was_never_written_is_counted_when_the_vin_comes_again(
    numbers: VersionNumbers, vin: str
) -> None:
    # A crash between the two bulk requests: the number is stored, the VIN's counter is not.
    await numbers.versions.insert_one({"_id": f"{vin}:1", "vin": vin, "number": 1})

    assert await numbers.claim_firsts([(f"{vin}:1", vin)]) == 0
    assert await numbers.number_for(f"{vin}:1", vin) == 1
    assert await numbers.counters.find_one({"_id": vin}) == {"_id": vin, "last": 1}
    assert await numbers.number_for(f"{vin}:2", vin) == 2


async def test_a_batchs_later_revisions_are_numbered_on_from_their_vins_counters_and_kept(
    numbers: VersionNumbers, vin: str
) -> None:
    one, two, behind, again = f"{vin}A", f"{vin}B", f"{vin}C", f"{vin}D"
    await numbers.claim_firsts([(f"{v}:1", v) for v in (one, two, behind, again)])
    assert await numbers.number_for(f"{two}:2", two) == 2
    assert await numbers.number_for(f"{again}:2", again) == 2
    # A crash after a number was stored and before its counter was raised: the counter is behind.
    await numbers.versions.insert_one({"_id": f"{behind}:2", "vin": behind, "number": 2})

    later = [(f"{one}:2", one), (f"{two}:3", two), (f"{behind}:3", behind), (f"{again}:2", again)]
    assert await numbers.claim_firsts(later) == 2  # the counter behind and the record numbered before: left

    assert [await numbers.number_for(r, v) for r, v in later] == [2, 3, 3, 2]
    for each, last in ((one, 2), (two, 3), (behind, 3), (again, 2)):
        assert await numbers.counters.find_one({"_id": each}) == {"_id": each, "last": last}
    # Claimed again (the batch came again after a fault): nothing new, the numbers stay.
    assert await numbers.claim_firsts(later) == 0
    other = VersionNumbers(numbers.versions.database)  # no claims in memory: read from the database
    assert [await other.number_for(r, v) for r, v in later] == [2, 3, 3, 2]
    assert await numbers.versions.count_documents({"vin": two}) == 3
