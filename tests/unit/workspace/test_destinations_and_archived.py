"""The board's destinations and the archived list: counts per country linking to their lists, a search paged by cursor."""

from __future__ import annotations

import pytest

from services.workspace.destinations import destinations_of
from services.workspace.identity import PersonRole
from tests.unit.workspace.fakes import PEOPLE, Site

pytestmark = pytest.mark.unit
VIEWER = PEOPLE[PersonRole.VIEWER]
READINESS = {
    "total": 6,
    "by_group": {"KUDU": {"blocked": 1, "archived": 5}},
    "by_country": {"D": {"archived": 3}, "GB": {"archived": 1, "blocked": 1}, "none": {"archived": 1}},
    "deliveries": {"D": {"delivered": 2, "submitted": 1}, "GB": {"delivery_rejected": 1}},
}


def test_destinations_come_most_vehicles_first_with_none_last_and_every_state_counted() -> None:
    rows = destinations_of(
        READINESS, ["blocked", "archived"], ["submitted", "delivered", "delivery_rejected"]
    )
    assert [(row.code, row.total) for row in rows] == [("D", 3), ("GB", 2), ("none", 1)]
    assert rows[0].counts == {"blocked": 0, "archived": 3}
    assert rows[0].deliveries == {"submitted": 1, "delivered": 2, "delivery_rejected": 0}
    assert rows[2].name == "No country stated"
    assert destinations_of({}, ["blocked"], ["delivered"]) == []


def test_the_board_shows_each_destination_and_its_deliveries_linking_to_their_lists() -> None:
    site = Site()
    site.api.readiness_answer = READINESS
    site.sign_in_as(VIEWER)
    page = site.client.get("/").text
    assert 'href="/states/archived?country=D"' in page
    assert 'href="/states/blocked?country=GB"' in page
    assert 'href="/states/archived?country=none"' in page
    assert 'data-cell="delivery|D|delivered"><a href="/states/archived?country=D"' in page
    assert 'data-cell="delivery|GB|delivery_rejected"><a' in page
    assert 'data-cell="delivery|none|delivered">0</td>' in page  # a zero links nowhere
    assert (
        page.index('data-country="D"') < page.index('data-country="GB"') < page.index('data-country="none"')
    )


def test_the_boards_json_carries_each_destination_cell_for_the_live_updates() -> None:
    site = Site()
    site.api.readiness_answer = READINESS
    site.sign_in_as(VIEWER)
    cells = site.client.get("/board.json").json()["destinations"]
    assert cells["country|D|archived"] == 3 and cells["country|none|archived"] == 1
    assert cells["delivery|GB|delivery_rejected"] == 1
    assert len(cells) == 7


def test_the_archived_list_searches_status_and_pages_on_by_its_cursor() -> None:
    site = Site()
    site.api.lists["archived"] = {
        "state": "archived",
        "items": [
            {
                "vin": "WVW00000000000001",
                "record_id": "WVW00000000000001:2",
                "revision": 2,
                "state": "archived",
                "vehicle_group": "KUDU",
                "record_type": "V",
                "country": "D",
                "updated_at": "2026-12-07T09:18:54.721000+00:00",
                "findings": [],
            }
        ],
        "total": 1234,
        "archived_from": "2026-12-01",
        "archived_to": "2026-12-07",
        "next": "YXwyMDI2LTEyLTA3fDN8MA",
    }
    site.api.facet_answer = {"groups": ["KUDU"], "codes": [], "countries": ["D", "GB"], "record_types": ["V"]}
    site.sign_in_as(VIEWER)
    search = {"archived_from": "2026-12-01", "archived_to": "2026-12-07", "country": "d", "group": "KUDU"}
    page = site.client.get("/states/archived", params={**search, "after": "YXwy"}).text
    assert site.api.asked == [
        (
            "state:archived",
            {
                "archived_from": "2026-12-01",
                "archived_to": "2026-12-07",
                "country": "D",
                "group": "KUDU",
                "after": "YXwy",
                "size": 10,
            },
        )
    ]
    assert "1,234 vehicles archived from 2026-12-01 to 2026-12-07 with this search" in page
    assert 'href="/records/WVW00000000000001"' in page and "11:18 SAST" in page
    query = "archived_from=2026-12-01&amp;archived_to=2026-12-07&amp;country=D&amp;group=KUDU"
    assert f'rel="next" href="/states/archived?{query}&amp;after=YXwyMDI2LTEyLTA3fDN8MA"' in page
    assert f'href="/states/archived?{query}">First page</a>' in page
    assert '<option value="D" selected>' in page
    assert f"/states/archived/export?format=csv&amp;{query}" in page


@pytest.mark.parametrize(
    "params",
    [{"archived_from": "7 Dec"}, {"country": "Germany"}, {"after": "<script>"}, {"record_type": "X"}],
)
def test_the_archived_list_refuses_a_search_it_cannot_make_before_asking_status(
    params: dict[str, str],
) -> None:
    site = Site()
    site.sign_in_as(VIEWER)
    assert site.client.get("/states/archived", params=params).status_code == 422
    assert site.api.asked == []


def test_a_date_the_archived_list_cannot_read_is_one_line_naming_the_field() -> None:
    site = Site()
    site.sign_in_as(VIEWER)

    answer = site.client.get(
        "/states/archived", params={"archived_from": "7 Dec", "archived_to": "2026-12-07"}
    )

    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text.startswith("archived_from: ") and answer.text.count("\n") == 1
    assert "{" not in answer.text
