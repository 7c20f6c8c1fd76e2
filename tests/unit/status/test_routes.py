"""The list endpoints' parameters: checked before any read, with errors naming the field."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.status import routes
from services.status.adapters.worklists import ListsNotReady
from services.status.archived import ArchivedQuery, Position
from services.status.worklist import Cursor, ListQuery
from shared.auth import Authenticator, Role
from shared.contracts.events import State
from shared.contracts.findings import Owner

pytestmark = pytest.mark.unit

TOKEN = "viewer-token"


class FakeRecords:
    async def get(self, vin: str) -> None:
        return None


class FakeCounters:
    async def readiness(self) -> dict[str, Any]:
        return {}

    async def facets(self) -> dict[str, list[str]]:
        return {"groups": ["CHR"], "codes": [], "record_types": ["C"], "countries": ["D"]}


class FakeArchived:
    def __init__(self) -> None:
        self.queries: list[ArchivedQuery] = []

    async def page(self, query: ArchivedQuery) -> dict[str, Any]:
        self.queries.append(query)
        return {"items": [], "total": 0, "next": None}


class FakeWorklists:
    def __init__(self) -> None:
        self.queries: list[ListQuery] = []
        self.ready = True

    async def page(self, query: ListQuery) -> dict[str, Any]:
        if not self.ready:
            raise ListsNotReady("the lists are being read after a start")
        self.queries.append(query)
        return {"items": [], "total": 0, "page": query.page, "size": query.size}


ARCHIVED = FakeArchived()
PLANT = ZoneInfo("Africa/Johannesburg")


@pytest.fixture
def client_and_worklists() -> tuple[TestClient, FakeWorklists]:
    worklists = FakeWorklists()
    ARCHIVED.queries.clear()
    app = FastAPI()
    auth = Authenticator({Role.VIEWER: TOKEN})
    app.include_router(
        routes.router(FakeRecords(), FakeCounters(), worklists, auth, archived=ARCHIVED, zone=PLANT)  # type: ignore[arg-type]
    )
    return TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}), worklists


def test_readiness_says_how_many_status_events_are_not_counted_yet() -> None:
    behind: list[int | None] = [None]
    app = FastAPI()
    auth = Authenticator({Role.VIEWER: TOKEN})
    app.include_router(routes.router(FakeRecords(), FakeCounters(), FakeWorklists(), auth, lambda: behind[0]))  # type: ignore[arg-type]
    client = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})
    assert client.get("/v1/readiness").json()["events_behind"] is None  # the topic not read yet
    behind[0] = 4321
    answer = client.get("/v1/readiness").json()
    assert answer["events_behind"] == 4321  # not held for the two seconds the counts are
    assert "as_of" in answer


def test_worklist_passes_owner_filters_and_page_to_the_view(
    client_and_worklists: tuple[TestClient, FakeWorklists],
) -> None:
    client, worklists = client_and_worklists
    answer = client.get(
        "/v1/worklist",
        params={
            "owner": "production",
            "group": "CHR",
            "code": "MASS",
            "min_age_s": 60,
            "page": 3,
            "size": 200,
        },
    )
    assert answer.status_code == 200
    assert worklists.queries == [ListQuery(Owner.PRODUCTION, None, "CHR", "MASS", 60, 3, 200)]
    client.get("/v1/worklist", params={"owner": "compliance"})
    assert worklists.queries[-1] == ListQuery(Owner.COMPLIANCE, None, None, None, None, 1, 50)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"owner": "sales"}, "owner"),
        ({}, "owner"),
        ({"owner": "production", "size": 201}, "size"),
        ({"owner": "production", "size": 0}, "size"),
        ({"owner": "production", "page": 0}, "page"),
        ({"owner": "production", "min_age_s": -1}, "min_age_s"),
    ],
)
def test_worklist_refuses_a_bad_parameter_naming_it(
    client_and_worklists: tuple[TestClient, FakeWorklists], params: dict[str, Any], field: str
) -> None:
    client, worklists = client_and_worklists
    answer = client.get("/v1/worklist", params=params)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["query", field]]
    assert worklists.queries == []


def test_state_list_passes_state_and_filters_and_refuses_archived_and_unknown_states(
    client_and_worklists: tuple[TestClient, FakeWorklists],
) -> None:
    client, worklists = client_and_worklists
    answer = client.get("/v1/records", params={"state": "failed", "group": "VAN", "page": 2})
    assert answer.status_code == 200
    assert worklists.queries == [ListQuery(None, State.FAILED, "VAN", None, None, 2, 50)]
    unknown = client.get("/v1/records", params={"state": "lost"})
    assert unknown.status_code == 422
    assert [error["loc"] for error in unknown.json()["detail"]] == [["query", "state"]]
    too_long = client.get("/v1/records", params={"state": "held", "group": "G" * 65})
    assert [error["loc"] for error in too_long.json()["detail"]] == [["query", "group"]]
    assert len(worklists.queries) == 1


def test_lists_not_ready_after_a_start_answer_503_with_retry_after(
    client_and_worklists: tuple[TestClient, FakeWorklists],
) -> None:
    client, worklists = client_and_worklists
    worklists.ready = False
    for path, params in (("/v1/worklist", {"owner": "production"}), ("/v1/records", {"state": "held"})):
        answer = client.get(path, params=params)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert "being read after a start" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"min_age_s": 10**19}, "min_age_s"), ({"page": 10**12}, "page")],
)
def test_list_parameters_beyond_any_meaning_are_refused_before_they_overflow(
    client_and_worklists: tuple[TestClient, FakeWorklists], params: dict[str, Any], field: str
) -> None:
    client, worklists = client_and_worklists
    for path, base in (("/v1/worklist", {"owner": "production"}), ("/v1/records", {"state": "held"})):
        answer = client.get(path, params={**base, **params})
        assert answer.status_code == 422
        assert [error["loc"] for error in answer.json()["detail"]] == [["query", field]]
    assert worklists.queries == []


def test_lists_pass_record_type_country_and_cursor_and_refuse_a_bad_one_naming_it(
    client_and_worklists: tuple[TestClient, FakeWorklists],
) -> None:
    client, worklists = client_and_worklists
    cursor = Cursor(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC), "WVW1")
    params = {"owner": "production", "record_type": "V", "country": "GB", "after": cursor.token()}
    assert client.get("/v1/worklist", params=params).status_code == 200
    assert client.get("/v1/records", params={"state": "held", "country": "none"}).status_code == 200
    assert [(q.record_type, q.country, q.after) for q in worklists.queries] == [
        ("V", "GB", cursor),
        (None, "none", None),
    ]
    for bad, field in (({"record_type": "X"}, "record_type"), ({"country": "gb"}, "country")):
        answer = client.get("/v1/worklist", params={"owner": "production", **bad})
        assert [error["loc"] for error in answer.json()["detail"]] == [["query", field]]
    answer = client.get("/v1/worklist", params={"owner": "production", "after": "not-a-cursor"})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("after: ")
    assert len(worklists.queries) == 2


def test_archived_list_searches_plant_days_by_country_and_group_a_year_up_to_today_by_default(
    client_and_worklists: tuple[TestClient, FakeWorklists],
) -> None:
    client, _ = client_and_worklists
    params = {"state": "archived", "archived_from": "2026-12-01", "archived_to": "2026-12-07"}
    position = Position("2026-12-05", 3, 7)
    extra = {"country": "D", "group": "CHR", "size": 20, "after": position.token()}
    assert client.get("/v1/records", params={**params, **extra}).status_code == 200
    assert client.get("/v1/records", params={"state": "archived"}).status_code == 200
    searched, default = ARCHIVED.queries
    assert searched == ArchivedQuery(
        dt.date(2026, 12, 1), dt.date(2026, 12, 7), "D", "CHR", None, 20, 1, position
    )
    today = dt.datetime.now(PLANT).date()
    assert (default.first, default.last) == (today - dt.timedelta(days=364), today)


@pytest.mark.parametrize(
    ("params", "starts"),
    [
        ({"state": "archived", "archived_from": "2026-12-08", "archived_to": "2026-12-07"}, "archived_from:"),
        ({"state": "archived", "code": "MASS_ABOVE_MAX"}, "code:"),
        ({"state": "archived", "after": "bm90"}, "after:"),
        ({"state": "held", "archived_to": "2026-12-07"}, "archived_to:"),
    ],
)
def test_archived_list_refuses_what_it_cannot_search_naming_the_parameter(
    client_and_worklists: tuple[TestClient, FakeWorklists], params: dict[str, Any], starts: str
) -> None:
    client, worklists = client_and_worklists
    answer = client.get("/v1/records", params=params)
    assert answer.status_code == 422 and answer.json()["detail"].startswith(starts)
    assert ARCHIVED.queries == [] and worklists.queries == []


def test_facets_name_the_values_the_filters_can_take(
    client_and_worklists: tuple[TestClient, FakeWorklists],
) -> None:
    client, _ = client_and_worklists
    assert client.get("/v1/facets").json()["countries"] == ["D"]
