"""The board's counters: what a record contributes, how a write moves them, and the board read from them."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from services.status.fold import StatusRecord, fold
from services.status.tally import Tally, add, facets_of, readiness_of, tallies, tally_change
from shared.contracts.events import DELIVERY_STATES, State, StatusEvent
from tests.findings import APPROVAL, COLOUR, MASS, TYRE

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)


def event(
    vin: str, stage: str, state: State, revision: int = 1, minutes: int = 0, **extra: Any
) -> StatusEvent:
    if stage in ("intake", "validation") and revision > 0:
        extra.setdefault("vehicle_group", "CHR")
    if stage == "intake" and revision > 0:
        extra.setdefault("country", "D")  # validation's events below leave it out: the known one stays
    if stage == "validation" and revision > 0:
        extra.setdefault("record_type", "C")
    return StatusEvent(
        vin=vin,
        record_id=f"{vin}:{revision}",
        revision=revision,
        stage=stage,
        state=state,
        time=T0 + dt.timedelta(minutes=minutes),
        service=f"{stage}@test:1",
        **extra,
    )


def history() -> list[StatusEvent]:
    """Four vehicles: archived after a correction, blocked twice, rejected, and failed in signing."""
    return [
        event("V1", "intake", State.RECEIVED, minutes=1),
        event("V1", "validation", State.BLOCKED, minutes=2, findings=(MASS, TYRE)),
        event("V1", "intake", State.RECEIVED, revision=2, minutes=3),
        event("V1", "validation", State.NEEDS_REVIEW, revision=2, minutes=4, findings=(COLOUR,)),
        event("V1", "validation", State.VALIDATED, revision=2, minutes=5),
        event("V1", "render", State.RENDERED, revision=2, minutes=6),
        event("V1", "archive", State.ARCHIVED, revision=2, minutes=8),
        event("V2", "intake", State.RECEIVED, vehicle_group="VAN", country="NL"),
        event("V2", "validation", State.BLOCKED, minutes=1, vehicle_group="VAN", findings=(APPROVAL,)),
        event(
            "V2",
            "validation",
            State.BLOCKED,
            minutes=2,
            vehicle_group="VAN",
            record_type="I",
            findings=(MASS, APPROVAL),
        ),
        event("V3", "intake", State.REJECTED, revision=0, reason="vin: field required"),
        event("V4", "render", State.RENDERED, minutes=2),
        event("V4", "signing", State.FAILED, minutes=3, reason="seal certificate expired"),
        event("V4", "validation", State.VALIDATED, minutes=1),  # late: only tells the group
    ]


EXPECTED = {
    "state|archived|CHR": 1,
    "state|blocked|VAN": 1,
    "state|rejected|unknown": 1,
    "state|failed|CHR": 1,
    "waiting|production": 1,
    "findings|production": 1,
    "waiting|type-approval": 1,
    "findings|type-approval": 1,
    "archived-min|2026-11-26T08:08": 1,
    "archived-hour|2026-11-26T08": 1,
    "country|archived|D": 1,
    "country|blocked|NL": 1,
    "country|rejected|none": 1,
    "country|failed|none": 1,  # V4: no event told its country
    "record-type|archived|C": 1,
    "record-type|blocked|I": 1,
    "record-type|rejected|none": 1,  # V3: rejected before any event told its record type
    "record-type|failed|C": 1,  # V4: told by its late validation event
    "rtype|C": 2,  # V1, and V4 told by its late validation event
    "rtype|I": 1,
    "code|MASS_ABOVE_MAX": 1,
    "code|APPROVAL_UNKNOWN": 1,
}


def fold_counting(events: list[StatusEvent]) -> tuple[dict[str, StatusRecord], Tally]:
    """Fold events one by one as the store does: each write moves the counters by its change."""
    records: dict[str, StatusRecord] = {}
    counts: Tally = {}
    for each in events:
        new = fold(records.get(each.vin), each)
        if new is not None:
            add(counts, tally_change(records.get(each.vin), new))
            records[each.vin] = new
    return records, counts


def test_counts_moved_event_by_event_equal_the_contribution_of_the_final_records() -> None:
    records, counts = fold_counting(history())
    assert counts == EXPECTED
    summed: Tally = {}
    for record in records.values():
        add(summed, tallies(record))
    assert summed == EXPECTED


def test_counts_are_the_same_when_events_come_shuffled_or_twice() -> None:
    for seed in range(20):
        events = history() * 2
        random.Random(seed).shuffle(events)
        assert fold_counting(events)[1] == EXPECTED, f"seed {seed}"


def test_counts_are_the_same_when_a_batch_folds_several_events_of_a_vin_into_one_write() -> None:
    records: dict[str, StatusRecord] = {}
    counts: Tally = {}
    events = history()
    for start in range(0, len(events), 5):
        batch = events[start : start + 5]
        for vin in {e.vin for e in batch}:
            before = after = records.get(vin)
            for each in (e for e in batch if e.vin == vin):
                after = fold(after, each) or after
            if after is not None and after is not before:
                add(counts, tally_change(before, after))
                records[vin] = after
    assert counts == EXPECTED


def test_a_record_leaving_the_worklists_takes_its_findings_with_it() -> None:
    blocked = fold(None, event("V1", "validation", State.BLOCKED, findings=(MASS, TYRE)))
    assert blocked is not None
    assert tallies(blocked) == {
        "state|blocked|CHR": 1,
        "country|blocked|none": 1,
        "record-type|blocked|C": 1,
        "waiting|production": 1,
        "findings|production": 2,
        "code|MASS_ABOVE_MAX": 1,
        "code|TYRE_UNLISTED": 1,
        "rtype|C": 1,
    }
    validated = fold(blocked, event("V1", "validation", State.VALIDATED, minutes=1))
    assert validated is not None
    assert tally_change(blocked, validated) == {
        "state|blocked|CHR": -1,
        "state|validated|CHR": 1,
        "country|blocked|none": -1,
        "country|validated|none": 1,
        "record-type|blocked|C": -1,
        "record-type|validated|C": 1,
        "waiting|production": -1,
        "findings|production": -2,
        "code|MASS_ABOVE_MAX": -1,
        "code|TYRE_UNLISTED": -1,
    }


def test_a_late_group_moves_the_record_from_unknown_to_its_group() -> None:
    rendered = fold(None, event("V1", "render", State.RENDERED, minutes=2))
    assert rendered is not None
    filled = fold(rendered, event("V1", "validation", State.VALIDATED, minutes=1))
    assert filled is not None
    assert tally_change(rendered, filled) == {
        "state|rendered|unknown": -1,
        "state|rendered|CHR": 1,
        "record-type|rendered|none": -1,  # and from no record type to its own
        "record-type|rendered|C": 1,
        "rtype|C": 1,
    }


def test_board_sums_states_groups_owners_and_archive_buckets_inside_their_windows() -> None:
    now = dt.datetime(2026, 11, 30, 13, 30, 20, tzinfo=dt.UTC)
    counts = {
        "state|archived|CHR": 5,
        "state|blocked|CHR": 2,
        "state|blocked|VAN": 1,
        "state|validated|VAN": 0,
        "waiting|production": 2,
        "findings|production": 3,
        "findings|compliance": 1,
        "waiting|compliance": 1,
        "archived-min|2026-11-30T13:30": 1,
        "archived-min|2026-11-30T12:30": 2,  # 60 minutes ago: inside
        "archived-min|2026-11-30T12:29": 4,  # 61 minutes ago: outside
        "archived-hour|2026-11-30T13": 1,
        "archived-hour|2026-11-30T12": 6,
        "archived-hour|2026-11-29T13": 10,  # 24 hours before the current hour: inside
        "archived-hour|2026-11-29T12": 100,  # outside
        "delivery|delivered": 4,
        "delivery|delivery_rejected": 1,
    }
    board = readiness_of(counts, now)
    assert board["total"] == 8
    assert {s: n for s, n in board["by_state"].items() if n} == {"archived": 5, "blocked": 3}
    assert set(board["by_state"]) == {state.value for state in State if state not in DELIVERY_STATES}
    # Delivery is counted beside the archived vehicles, not as states of their own.
    assert {s: n for s, n in board["delivery_by_state"].items() if n} == {
        "delivered": 4,
        "delivery_rejected": 1,
    }
    assert board["by_group"] == {"CHR": {"archived": 5, "blocked": 2}, "VAN": {"blocked": 1}}
    assert (board["archived_last_hour"], board["archived_last_day"]) == (3, 17)
    assert board["open_findings_by_owner"] == {
        "type-approval": 0,
        "production": 3,
        "compliance": 1,
        "integration": 0,
    }
    assert board["waiting_by_owner"]["production"] == 2


def test_board_splits_states_and_deliveries_by_destination_and_the_facets_list_what_exists() -> None:
    counts = {
        "state|archived|CHR": 3,
        "state|blocked|VAN": 1,
        "state|received|unknown": 1,
        "country|archived|D": 2,
        "country|archived|none": 1,
        "country|blocked|GB": 1,
        "country|received|NL": 0,
        "deliveries|D|delivered": 1,
        "deliveries|D|submitted": 1,
        "deliveries|none|delivery_rejected": 1,
        "record-type|archived|C": 2,
        "record-type|archived|V": 1,
        "record-type|blocked|I": 1,
        "record-type|received|none": 1,
        "record-type|blocked|V": 0,
        "rtype|C": 3,
        "rtype|I": 0,
        "rtype|V": 1,
        "code|MASS_ABOVE_MAX": 1,
        "code|TYRE_UNLISTED": 0,
    }
    board = readiness_of(counts, dt.datetime(2026, 11, 30, 13, 30, tzinfo=dt.UTC))
    assert board["by_country"] == {"D": {"archived": 2}, "none": {"archived": 1}, "GB": {"blocked": 1}}
    assert board["deliveries"] == {
        "D": {"delivered": 1, "submitted": 1},
        "none": {"delivery_rejected": 1},
    }
    assert board["by_record_type"] == {
        "C": {"archived": 2},
        "V": {"archived": 1},
        "I": {"blocked": 1},
        "none": {"received": 1},
    }
    assert facets_of(counts) == {
        "groups": ["CHR", "VAN"],
        "codes": ["MASS_ABOVE_MAX"],
        "record_types": ["C", "V"],
        "countries": ["D", "GB"],
    }


def test_an_archived_vehicle_counts_its_delivery_under_its_destination() -> None:
    archived = fold(None, event("V1", "intake", State.RECEIVED, country="NL"))
    assert archived is not None
    archived = fold(archived, event("V1", "archive", State.ARCHIVED, minutes=1))
    assert archived is not None
    delivered = fold(archived, event("V1", "delivery", State.DELIVERED, minutes=2, destination="rdw"))
    assert delivered is not None
    assert delivered.country == "NL"
    assert tally_change(archived, delivered) == {"delivery|delivered": 1, "deliveries|NL|delivered": 1}


def test_a_completed_vehicle_counts_under_its_own_record_type_and_moves_with_its_state() -> None:
    received = fold(None, event("V9", "intake", State.RECEIVED))
    assert received is not None
    assert tallies(received)["record-type|received|none"] == 1  # no event told the type yet
    validated = fold(received, event("V9", "validation", State.VALIDATED, minutes=1, record_type="V"))
    assert validated is not None
    archived = fold(validated, event("V9", "archive", State.ARCHIVED, minutes=2))
    assert archived is not None
    counts: Tally = {}
    for before, after in ((None, received), (received, validated), (validated, archived)):
        add(counts, tally_change(before, after))
    assert {k: n for k, n in counts.items() if k.startswith("record-type|")} == {"record-type|archived|V": 1}
    board = readiness_of(counts, T0)
    assert board["by_record_type"] == {"V": {"archived": 1}}
