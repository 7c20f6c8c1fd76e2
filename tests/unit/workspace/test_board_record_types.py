"""The board by record type: complete, incomplete and completed vehicles per state, linking to their lists."""

from __future__ import annotations

import pytest

from services.workspace.identity import PersonRole
from services.workspace.record_types import record_types_of
from tests.unit.workspace.fakes import PEOPLE, Site

pytestmark = pytest.mark.unit
VIEWER = PEOPLE[PersonRole.VIEWER]
READINESS = {
    "total": 6,
    "by_group": {"RANGER": {"blocked": 1, "archived": 4}, "unknown": {"rejected": 1}},
    "by_record_type": {"C": {"archived": 2}, "V": {"archived": 2, "blocked": 1}, "none": {"rejected": 1}},
}


def test_the_rows_are_complete_incomplete_and_completed_by_name_then_the_unknown_last() -> None:
    rows = record_types_of(READINESS, ["blocked", "archived", "rejected"])
    assert [(row.code, row.name) for row in rows] == [
        ("C", "Complete vehicle (C)"),
        ("I", "Incomplete vehicle (I)"),
        ("V", "Completed vehicle (V)"),
        ("none", "Not known yet"),
    ]
    assert rows[0].counts == {"blocked": 0, "archived": 2, "rejected": 0}
    assert rows[2].counts == {"blocked": 1, "archived": 2, "rejected": 0}  # V counted as V, not as C
    assert [row.filterable for row in rows] == [True, True, True, False]
    assert [row.code for row in record_types_of({}, ["archived"])] == ["C", "I", "V"]


def test_the_board_shows_each_record_types_counts_linking_to_the_list_filtered_by_it() -> None:
    site = Site()
    site.api.readiness_answer = READINESS
    site.sign_in_as(VIEWER)
    page = site.client.get("/").text
    section = page[page.index('id="record-types-title"') :]
    assert "By record type" in page and "Completed vehicle (V)" in section
    assert 'data-cell="rtype|V|archived"><a href="/states/archived?record_type=V"' in section
    assert 'aria-label="2 archived: Completed vehicle (V)">2</a>' in section
    assert 'data-cell="rtype|V|blocked"><a href="/states/blocked?record_type=V"' in section
    assert 'data-cell="rtype|C|archived"><a href="/states/archived?record_type=C"' in section
    assert 'data-cell="rtype|I|archived">0</td>' in section  # a zero links nowhere
    assert 'data-cell="rtype|none|rejected" data-plain>1</td>' in section  # no list filters by "not known"


def test_the_boards_json_carries_each_record_type_cell_for_the_live_updates() -> None:
    site = Site()
    site.api.readiness_answer = READINESS
    site.sign_in_as(VIEWER)
    cells = site.client.get("/board.json").json()["destinations"]
    assert cells["rtype|V|archived"] == 2 and cells["rtype|V|blocked"] == 1
    assert cells["rtype|C|archived"] == 2 and cells["rtype|none|rejected"] == 1
