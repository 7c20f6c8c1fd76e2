"""Readiness by destination and the filters' facets on the real FerretDB: counted as folded, recounted alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.status.adapters.store import StatusStore
from shared.contracts.events import State
from tests.findings import MASS
from tests.integration.status.helpers import apply_all, blocked, counters, event, stored_tallies

pytestmark = pytest.mark.integration


async def test_destinations_record_types_and_codes_are_counted_and_a_recount_finds_them_again(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await apply_all(
        store,
        [
            event(vin(1), "intake", State.RECEIVED, country="D"),
            event(vin(1), "validation", State.VALIDATED, minutes=1, record_type="V"),  # no country: D stays
            event(vin(1), "archive", State.ARCHIVED, minutes=2),
            event(vin(1), "delivery", State.DELIVERED, minutes=3, destination="kba"),
            event(vin(2), "intake", State.RECEIVED, country="UK"),
            blocked(vin(2), MASS, minutes=1, record_type="C"),
            event(vin(3), "intake", State.RECEIVED),  # no intended country
        ],
    )
    board = await store.counters.readiness()
    assert board["by_country"] == {"D": {"archived": 1}, "UK": {"blocked": 1}, "none": {"received": 1}}
    assert board["deliveries"] == {"D": {"delivered": 1}}
    assert board["by_record_type"] == {"V": {"archived": 1}, "C": {"blocked": 1}, "none": {"received": 1}}
    assert await store.counters.facets() == {
        "groups": ["CHR"],
        "codes": ["MASS_ABOVE_MAX"],
        "record_types": ["C", "V"],
        "countries": ["D", "UK"],
    }
    record = await store.records.get(vin(1))
    assert record is not None and (record.country, record.record_type) == ("D", "V")

    await store.kept.counts.delete_many({})  # the counters lost: a recount finds them from the entries
    assert await store.counters.recount(grace_s=0.1) is True
    # not recounted, as before: the delivery counters, and time buckets older than a day (these are)
    expected = {
        k: n for k, n in (await stored_tallies(store)).items() if not k.startswith(("deliver", "archived-"))
    }
    assert await counters(store) == expected
    assert (await store.counters.facets())["countries"] == ["D", "UK"]
    assert (await store.counters.readiness())["by_record_type"] == board["by_record_type"]
