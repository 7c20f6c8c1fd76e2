"""The lists' pages and exports: filters as choices of what exists, next steps, CSV and XLSX downloads."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import openpyxl
import pytest

from services.workspace.adapters.pipeline import PipelineUnavailable
from services.workspace.identity import PersonRole
from shared.findings import CATALOGUE
from tests.unit.workspace.fakes import PEOPLE, FakePipeline, Site

VIEWER = PEOPLE[PersonRole.VIEWER]
FACETS = {
    "groups": ["KUDU", "RHINO"],
    "codes": ["COLOUR_INVALID", "APPROVAL_UNKNOWN"],
    "record_types": ["C", "V"],
    "countries": ["D", "GB"],
}


def item(n: int, code: str = "COLOUR_INVALID", owner: str = "production") -> dict[str, Any]:
    return {
        "vin": f"WVWZZZ1KZAW{n:06d}",
        "revision": 1,
        "state": "blocked",
        "vehicle_group": "KUDU",
        "record_type": "C",
        "country": "D",
        "updated_at": "2026-12-07T09:18:54.721638+00:00",
        "age_s": 600,
        "findings": [
            {"code": code, "path": "CocDataGroup", "message": "m", "severity": "error", "owner": owner}
        ],
    }


@dataclass
class PagedPipeline(FakePipeline):
    """A status whose lists page by cursor, as interface 5 says: ``after`` in, ``next`` out."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    async def _paged(self, filters: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            return dict(self._answer({}))
        size = int(filters.get("size", 50))
        start = next((i + 1 for i, r in enumerate(self.rows) if r["vin"] == filters.get("after")), 0)
        page = self.rows[start : start + size]
        more = start + size < len(self.rows)
        return {"items": page, "total": len(self.rows), "next": page[-1]["vin"] if more else None}

    async def worklist(self, owner: str, **filters: Any) -> dict[str, Any]:
        self.asked.append((f"worklist:{owner}", filters))
        return await self._paged(filters)

    async def records_in(self, state: str, **filters: Any) -> dict[str, Any]:
        self.asked.append((f"state:{state}", filters))
        return await self._paged(filters)


def site_with(rows: list[dict[str, Any]], facets: dict[str, Any] | None = None) -> Site:
    site = Site(api=PagedPipeline(rows=rows, facet_answer=facets or {}))
    site.sign_in_as(VIEWER)
    return site


def test_the_filters_are_choices_of_the_groups_codes_record_types_and_countries_that_exist() -> None:
    site = site_with([item(1)], FACETS)
    page = site.client.get("/worklists/production", params={"group": "RHINO"}).text
    assert '<select id="f-group" name="group">' in page
    assert '<option value="RHINO" selected>RHINO</option>' in page and '<option value="">any</option>' in page
    assert '<option value="APPROVAL_UNKNOWN">APPROVAL_UNKNOWN</option>' in page
    assert '<option value="V">Completed vehicle (V)</option>' in page
    assert '<option value="D">D — Germany</option>' in page
    assert 'name="code" maxlength' not in page


def test_without_facets_the_filters_are_text_boxes_and_the_record_type_still_a_choice() -> None:
    site = site_with([item(1)])
    page = site.client.get("/worklists/production", params={"code": "colour_invalid"}).text
    assert '<input id="f-code" name="code" maxlength="64" value="COLOUR_INVALID">' in page
    assert '<select id="f-type" name="record_type">' in page


def test_a_value_in_the_address_that_is_no_choice_stays_selected() -> None:
    site = site_with([], FACETS)
    page = site.client.get("/states/blocked", params={"group": "EAGLE"}).text
    assert '<option value="EAGLE" selected>EAGLE</option>' in page


def test_each_finding_on_a_list_shows_its_next_step_and_who_to_ask() -> None:
    site = site_with([item(1), item(2, "APPROVAL_UNKNOWN", "type-approval")])
    page = site.client.get("/states/blocked").text
    assert "Next step:</strong> Correct the colour code in the MES" in page
    assert "Next step:</strong> Publish the approval" in page
    assert "Ask:</strong> Type-approval: the approval&#39;s data owner" in page


def test_record_type_and_country_filters_reach_the_status_api_and_the_export_links() -> None:
    site = site_with([item(1)], FACETS)
    page = site.client.get("/worklists/production", params={"record_type": "v", "country": "gb"}).text
    assert site.api.asked[0] == (
        "worklist:production",
        {"record_type": "V", "country": "GB", "page": 1, "size": 10},
    )
    assert 'href="/worklists/production/export?format=xlsx&amp;record_type=V&amp;country=GB"' in page


@pytest.mark.parametrize(
    "params", [{"record_type": "X"}, {"country": "D1"}, {"format": "pdf"}, {"archived_from": "yesterday"}]
)
def test_a_filter_out_of_its_domain_is_refused_naming_it(params: dict[str, str]) -> None:
    site = site_with([item(1)])
    response = site.client.get("/worklists/production/export", params=params)
    assert response.status_code == 422
    assert next(iter(params)) in response.text


def test_a_viewer_exports_a_worklist_as_csv_with_its_filters_one_line_per_finding() -> None:
    site = site_with([item(n) for n in range(250)])
    response = site.client.get("/worklists/production/export", params={"format": "csv", "group": "KUDU"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="worklist-production-20261201T0900Z.csv"' in response.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(lines) == 251 and lines[1][0] == "WVWZZZ1KZAW000000"
    assert lines[1][11].startswith("Correct the colour code in the MES")
    assert [asked for _, asked in site.api.asked] == [
        {"group": "KUDU", "size": 200},
        {"group": "KUDU", "size": 200, "after": "WVWZZZ1KZAW000199"},
    ]


def test_a_state_list_exports_as_xlsx_that_opens_with_openpyxl() -> None:
    site = site_with([item(n) for n in range(3)])
    response = site.client.get("/states/blocked/export", params={"format": "xlsx", "country": "D"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert [row[0] for row in book["Records"].iter_rows(min_row=2, values_only=True)] == [
        f"WVWZZZ1KZAW{n:06d}" for n in range(3)
    ]
    told = {row[0]: row[1] for row in book["About this export"].iter_rows(values_only=True)}
    assert told["List"] == "Records blocked" and told["Filters"] == "country D"
    assert told["Exported by"] == VIEWER.name


def test_an_export_when_the_status_service_does_not_answer_is_a_503_not_a_cut_file() -> None:
    site = site_with([item(1)])
    site.api.down = True
    response = site.client.get("/worklists/production/export", params={"format": "xlsx"})
    assert response.status_code == 503 and "did not answer" in response.json()["detail"]


def test_an_export_needs_a_signed_in_person() -> None:
    site = Site()
    response = site.client.get("/worklists/production/export")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")


def test_the_records_without_an_intended_country_are_asked_for_as_none() -> None:
    site = site_with([item(1)], {**FACETS, "countries": ["D", "none"]})
    page = site.client.get("/states/blocked", params={"country": "NONE"}).text
    assert site.api.asked[0] == ("state:blocked", {"country": "none", "page": 1, "size": 10})
    assert '<option value="none" selected>none stated</option>' in page


def test_the_archived_lists_dates_go_to_status_for_the_archived_state_alone() -> None:
    site = site_with([item(1)])
    dates = {"archived_from": "2026-12-01", "archived_to": "2026-12-07", "format": "csv"}
    assert site.client.get("/states/archived/export", params=dates).status_code == 200
    assert site.client.get("/states/blocked/export", params=dates).status_code == 200
    assert [asked for _, asked in site.api.asked] == [
        {"archived_from": "2026-12-01", "archived_to": "2026-12-07", "size": 200},
        {"size": 200},
    ]


def test_a_status_that_stops_answering_midway_gives_a_file_that_says_it_is_incomplete() -> None:
    site = site_with([item(n) for n in range(250)])
    paged = site.api._paged

    async def faltering(filters: dict[str, Any]) -> dict[str, Any]:
        if filters.get("after"):
            raise PipelineUnavailable("http://status.test did not answer: ReadTimeout")
        return await paged(filters)

    site.api._paged = faltering  # type: ignore[method-assign]
    response = site.client.get("/worklists/production/export", params={"format": "csv"})
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert response.status_code == 200 and len(lines) == 1 + 200 + 1
    assert lines[-1][0].startswith(
        "Incomplete: http://status.test did not answer: ReadTimeout, so the export"
    )


def test_a_records_open_findings_show_their_next_step_and_who_to_ask_on_its_page() -> None:
    site = site_with([])
    found = item(7, "GROUP_HELD", "compliance")
    event = {
        "revision": 1,
        "stage": "validation",
        "state": "held",
        "time": found["updated_at"],
        "service": "v@1",
    }
    site.api.records[found["vin"]] = {**found, "state": "held", "timeline": [event]}
    page = site.client.get(f"/records/{found['vin']}").text
    assert '<td class="next-step">Ask the compliance lead to release the group on the Rollout page' in page
    assert '<td class="ask">Compliance: the compliance lead (compliance-lead role)</td>' in page


def test_the_finding_codes_page_lists_every_code_with_its_step_whom_to_ask_and_source() -> None:
    site = site_with([item(1)])
    page = site.client.get("/findings").text
    for entry in CATALOGUE:
        assert f'<tr id="{entry.code}"><td><code>{entry.code}</code></td>' in page
    assert "Correct the colour code in the MES" in page and "IVI 2.0 colour codes" in page
    assert '<h2 id="ask-lead">Compliance: the compliance lead (compliance-lead role)</h2>' in page
    listing = site.client.get("/worklists/production").text
    assert '<a href="/findings#COLOUR_INVALID"><code>COLOUR_INVALID</code></a>' in listing
