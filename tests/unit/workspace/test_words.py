"""How the pages say times: the plant's zone, one format, the instant kept in a <time> element."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from jinja2 import Environment

from services.workspace import words
from services.workspace.identity import PersonRole
from services.workspace.routes.views import board_view
from services.workspace.settings import WorkspaceSettings
from tests.unit.workspace.fakes import PEOPLE, T0, Site

pytestmark = pytest.mark.unit
INSTANT = dt.datetime(2026, 12, 7, 9, 18, 54, 721638, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "value",
    [INSTANT, INSTANT.isoformat(), "2026-12-07T09:18:54.721638Z", INSTANT.astimezone(ZoneInfo("Asia/Tokyo"))],
    ids=["datetime", "ISO text", "ISO text with Z", "another zone's datetime"],
)
def test_a_utc_instant_reads_in_south_african_time(value: object) -> None:
    assert words.when(value) == "7 Dec 2026, 11:18 SAST"


def test_a_time_without_a_zone_is_taken_as_utc() -> None:
    assert words.when("2026-12-07T09:18:54") == "7 Dec 2026, 11:18 SAST"


def test_another_plant_zone_says_its_own_abbreviation_summer_and_winter() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert words.when(INSTANT, berlin) == "7 Dec 2026, 10:18 CET"
    assert words.when(dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC), berlin) == "1 Jul 2026, 11:00 CEST"


def test_no_time_is_a_dash_and_a_text_that_is_no_time_stays_as_it_is() -> None:
    assert words.when(None) == words.when("") == "–"
    assert words.when("soon") == "soon"


def test_the_time_tag_carries_the_utc_instant_for_machines_and_the_text_for_people() -> None:
    assert str(words.when_tag(INSTANT)) == (
        '<time datetime="2026-12-07T09:18:54.721Z">7 Dec 2026, 11:18 SAST</time>'
    )
    assert str(words.when_tag("<b>")) == "&lt;b&gt;"


def test_the_filters_render_in_the_zone_they_were_installed_with() -> None:
    env = Environment(autoescape=True)
    words.install(env, ZoneInfo("UTC"))
    assert env.from_string("{{ t|when }}").render(t=INSTANT) == "7 Dec 2026, 09:18 UTC"
    words.install(env)
    assert (
        env.from_string("{{ t|when_tag }}")
        .render(t=INSTANT.isoformat())
        .endswith(">7 Dec 2026, 11:18 SAST</time>")
    )


def test_the_plant_zone_is_one_shared_setting_south_africa_unless_set() -> None:
    assert WorkspaceSettings().plant_zone() == ZoneInfo("Africa/Johannesburg")
    assert WorkspaceSettings(plant_timezone="Europe/London").plant_zone() == ZoneInfo("Europe/London")
    with pytest.raises(ValueError, match="no IANA time zone"):
        WorkspaceSettings(plant_timezone="Mars/Olympus_Mons")


def test_the_boards_live_numbers_carry_the_counted_time_as_people_read_it() -> None:
    board = board_view({"as_of": INSTANT.isoformat()}, ZoneInfo("Africa/Johannesburg"))
    assert board.as_json()["as_of_text"] == "7 Dec 2026, 11:18 SAST"
    assert board_view({}).as_of_text == "–"


# -- the pages -------------------------------------------------------------------------------------


def test_the_board_says_when_it_was_counted_in_sast() -> None:
    site = Site()
    site.api.readiness_answer = {"total": 1, "as_of": INSTANT.isoformat()}
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    page = site.client.get("/").text
    assert (
        '<time data-count="as_of" datetime="2026-12-07T09:18:54.721638+00:00">7 Dec 2026, 11:18 SAST</time>'
        in page
    )
    assert site.client.get("/board.json").json()["as_of_text"] == "7 Dec 2026, 11:18 SAST"


def test_a_record_pages_timeline_and_revisions_read_in_sast_not_iso() -> None:
    site = Site()
    vin = "WAITING0VIN000001"
    event = {
        "revision": 1,
        "stage": "validation",
        "state": "blocked",
        "time": T0.isoformat(),
        "service": "v@1",
    }
    site.api.records[vin] = {
        "vin": vin,
        "revision": 1,
        "state": "blocked",
        "timeline": [event],
        "findings": [],
    }
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    page = site.client.get(f"/records/{vin}").text
    assert page.count('<time datetime="2026-12-01T09:00:00.000Z">1 Dec 2026, 11:00 SAST</time>') == 2
    assert T0.isoformat() not in page and "(UTC)" not in page


def test_the_sessions_page_says_when_each_session_began_in_sast() -> None:
    site = Site()
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    page = site.client.get("/sessions").text
    assert "SAST</time>" in page and " UTC" not in page


def test_a_calendar_date_reads_as_people_write_it() -> None:
    assert words.day(dt.date(2024, 9, 23)) == words.day("2024-09-23") == "23 Sep 2024"
    assert words.day(None) == "–" and words.day("someday") == "someday"
