"""The archived list's lanes: which an archived record is in, how its counters move, and the search's days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from services.status.archived import (
    ArchivedQuery,
    BadArchivedQuery,
    Position,
    describes,
    entered,
    entry_of,
    lane_change,
    lanes_of,
    packed,
    unpacked,
)
from services.status.fold import StatusRecord
from shared.contracts.events import State

pytestmark = pytest.mark.unit

PLANT = ZoneInfo("Africa/Johannesburg")
LATE = dt.datetime(2026, 12, 6, 22, 30, tzinfo=dt.UTC)  # 7 December at the plant


def record(state: State = State.ARCHIVED, **changes: object) -> StatusRecord:
    fields: dict[str, object] = {
        "vin": "WVW1",
        "record_id": "WVW1:1",
        "revision": 1,
        "state": state,
        "stage": "archive",
        "vehicle_group": "CHR",
        "country": "D",
        "updated_at": LATE,
        "seq": 3,
    }
    return StatusRecord.model_validate({**fields, **changes})


def test_an_archived_record_is_in_four_lanes_of_its_plant_day_and_one_on_its_way_in_none() -> None:
    assert lanes_of(record(), PLANT) == [
        "2026-12-07|~|~",
        "2026-12-07|D|~",
        "2026-12-07|~|CHR",
        "2026-12-07|D|CHR",
    ]
    assert lanes_of(record(), dt.UTC)[0] == "2026-12-06|~|~"
    assert lanes_of(record(country=None, vehicle_group=None), PLANT)[3] == "2026-12-07|none|unknown"
    assert lanes_of(record(State.SIGNED), PLANT) == []


def test_a_correction_moves_the_vehicle_out_of_its_lanes_and_a_late_country_into_others() -> None:
    archived = record()
    corrected = record(State.RECEIVED, revision=2, record_id="WVW1:2")
    assert lane_change(archived, corrected, PLANT) == {
        f"lane|{name}": -1 for name in lanes_of(archived, PLANT)
    }
    unknown = record(country=None)
    assert lane_change(unknown, archived, PLANT) == {
        "lane|2026-12-07|none|~": -1,
        "lane|2026-12-07|none|CHR": -1,
        "lane|2026-12-07|D|~": 1,
        "lane|2026-12-07|D|CHR": 1,
    }
    assert entered(None, archived, PLANT) and entered(unknown, archived, PLANT)
    assert not entered(archived, archived.model_copy(update={"seq": 4}), PLANT)  # a delivery, say
    assert not entered(None, corrected, PLANT)


def test_an_entry_holds_while_the_index_entry_says_archived_then_and_in_its_lane() -> None:
    entry = unpacked(packed([entry_of(record())]))[0]
    assert entry["at"] == LATE
    index = {"state": "archived", "updated_at": LATE, "country": "D", "group": "CHR"}
    assert describes(entry, index, "2026-12-07|D|CHR")
    assert not describes(entry, {**index, "updated_at": LATE + dt.timedelta(hours=1)}, "2026-12-07|~|~")
    assert not describes(entry, {**index, "state": "received"}, "2026-12-07|~|~")
    assert not describes(entry, {**index, "country": "NL"}, "2026-12-07|D|~")
    assert describes(entry, {**index, "country": None}, "2026-12-07|none|~")
    assert not describes(entry, None, "2026-12-07|~|~")


def test_a_search_walks_its_days_newest_first_from_the_cursor_day_and_is_bounded() -> None:
    first, last = dt.date(2026, 12, 5), dt.date(2026, 12, 7)
    assert ArchivedQuery(first, last).days() == ["2026-12-07", "2026-12-06", "2026-12-05"]
    assert ArchivedQuery(first, last, after=Position("2026-12-06", 2, 0)).days() == [
        "2026-12-06",
        "2026-12-05",
    ]
    assert ArchivedQuery(first, last, country="D", group="VAN").lane("2026-12-06") == "2026-12-06|D|VAN"
    with pytest.raises(BadArchivedQuery, match=r"^archived_from: later"):
        ArchivedQuery(last, first)
    with pytest.raises(BadArchivedQuery, match=r"^archived_from: a search spans at most"):
        ArchivedQuery(dt.date(2000, 1, 1), last)


def test_a_cursor_goes_through_its_token_and_one_not_made_by_the_list_is_refused() -> None:
    position = Position("2026-12-07", 12, 3)
    assert Position.parse(position.token()) == position
    bad = [Position("2026-13-07", 1, 0).token(), Position("2026-12-07", 0, 0).token(), "%%", "YnxifGM"]
    for token in bad:
        with pytest.raises(BadArchivedQuery, match=r"^after: "):
            Position.parse(token)
