"""Exports of a list: lines from the status API's pages, walked by cursor or page, bounded and inert."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

import openpyxl
import pytest

from services.workspace import export
from services.workspace.export import COLUMNS, About, Walk, neutral, rows_of

AT = dt.datetime(2026, 12, 7, 9, 18, tzinfo=dt.UTC)


def item(n: int, findings: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "vin": f"WVWZZZ1KZAW{n:06d}",
        "revision": 2,
        "state": "blocked",
        "vehicle_group": "KUDU",
        "record_type": "C",
        "country": "D",
        "updated_at": "2026-12-07T11:18:54.721638+02:00",
        "findings": [
            {
                "code": "COLOUR_INVALID",
                "path": "CocDataGroup/ColourTable/ColourGroup/Colour",
                "message": f"colour code '{k + 11}' is not an IVI colour code (1-10)",
                "owner": "production",
                "severity": "error",
            }
            for k in range(findings)
        ],
        **extra,
    }


class CursorList:
    """A status list served by cursor: ``next`` is the last VIN of a page, ``after`` continues from it."""

    def __init__(self, items: list[dict[str, Any]], cursor: bool = True) -> None:
        self.items, self.cursor = items, cursor
        self.asked: list[dict[str, Any]] = []

    async def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(dict(params))
        size = params["size"]
        if self.cursor:
            start = next((i + 1 for i, it in enumerate(self.items) if it["vin"] == params.get("after")), 0)
        else:
            start = (params.get("page", 1) - 1) * size
        page = self.items[start : start + size]
        answer: dict[str, Any] = {"items": page, "total": len(self.items)}
        if self.cursor:
            answer["next"] = page[-1]["vin"] if start + size < len(self.items) else None
        return answer


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def csv_lines(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def about() -> About:
    return About("Production worklist", {"group": "KUDU", "code": ""}, AT, "Thandi Nkosi")


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_a_cell_that_would_start_a_formula_is_written_as_text_with_an_apostrophe(value: str) -> None:
    assert neutral(value) == "'" + value


@pytest.mark.parametrize("value", ["WVWZZZ1KZAW000001", "colour 1-10", "", 2, None])
def test_other_cells_are_written_as_they_are(value: str | int | None) -> None:
    assert neutral(value) == value


def test_each_finding_is_a_line_with_its_next_step_and_times_are_iso_in_utc() -> None:
    lines = rows_of(item(1, findings=2))
    assert len(lines) == 2
    line = dict(zip(COLUMNS, lines[0], strict=True))
    assert line["VIN"] == "WVWZZZ1KZAW000001" and line["Revision"] == 2 and line["Country"] == "D"
    assert line["Updated"] == "2026-12-07T09:18:54.721+00:00"
    assert line["Finding code"] == "COLOUR_INVALID" and line["Owner"] == "production"
    assert str(line["Next step"]).startswith("Correct the colour code in the MES")
    assert str(line["Who to ask"]).startswith("Production")


def test_a_record_without_findings_is_one_line_with_empty_finding_cells() -> None:
    (line,) = rows_of(item(1, findings=0, state="received"))
    assert line[:3] == ("WVWZZZ1KZAW000001", 2, "received") and line[7:] == ("",) * 6


@pytest.mark.parametrize("cursor", [True, False], ids=["by cursor", "by page number"])
def test_an_export_walks_every_page_of_the_list_in_order(cursor: bool) -> None:
    source = CursorList([item(n) for n in range(450)], cursor=cursor)
    data = asyncio.run(collect(export.csv_stream(source, Walk())))
    lines = csv_lines(data)
    assert lines[0] == list(COLUMNS)
    assert [line[0] for line in lines[1:]] == [f"WVWZZZ1KZAW{n:06d}" for n in range(450)]
    assert len(source.asked) == 3
    if cursor:
        assert source.asked[1] == {"size": 200, "after": "WVWZZZ1KZAW000199"}


def test_a_cursor_that_comes_round_again_ends_the_walk() -> None:
    async def looping(params: dict[str, Any]) -> dict[str, Any]:
        return {"items": [item(1)], "next": "same"}

    data = asyncio.run(collect(export.csv_stream(looping, Walk())))
    assert len(csv_lines(data)) == 1 + 2  # the header, the page before the cursor repeats, and the repeat


def test_a_list_longer_than_the_cap_stops_at_a_records_end_and_the_file_says_so() -> None:
    source = CursorList([item(n, findings=3) for n in range(40)])
    walk = Walk(limit=100)
    lines = csv_lines(asyncio.run(collect(export.csv_stream(source, walk))))
    assert walk.capped and walk.rows == 99 and walk.records == 33
    assert len(lines) == 1 + 99 + 1
    assert lines[-1][0].startswith("Capped at 100 lines: 33 records exported; the list holds 40 records.")


def test_a_list_within_the_cap_has_no_note() -> None:
    walk = Walk(limit=100)
    lines = csv_lines(asyncio.run(collect(export.csv_stream(CursorList([item(1)]), walk))))
    assert not walk.capped and len(lines) == 2


def test_the_cap_is_a_hundred_thousand_lines() -> None:
    assert export.MAX_ROWS == 100_000 and Walk().limit == 100_000


def test_formulas_from_the_data_reach_neither_csv_nor_xlsx_as_formulas() -> None:
    bad = item(1)
    bad["findings"][0]["message"] = "=cmd|' /C calc'!A0"
    bad["vehicle_group"] = "@KUDU"
    lines = csv_lines(asyncio.run(collect(export.csv_stream(CursorList([bad]), Walk()))))
    assert lines[1][3] == "'@KUDU" and lines[1][9] == "'=cmd|' /C calc'!A0"
    data = asyncio.run(collect(export.xlsx_stream(CursorList([bad]), Walk(), about())))
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Records"]
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    assert sheet.cell(2, 10).value == "'=cmd|' /C calc'!A0"


def test_an_xlsx_export_holds_the_lines_and_an_about_sheet_naming_list_filters_and_cap() -> None:
    source = CursorList([item(n, findings=2) for n in range(30)])
    walk = Walk(limit=40)
    data = asyncio.run(collect(export.xlsx_stream(source, walk, about())))
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = list(book["Records"].iter_rows(values_only=True))
    assert rows[0] == COLUMNS and len(rows) == 1 + 40 + 1
    assert rows[1][0] == "WVWZZZ1KZAW000000" and rows[1][6] == "2026-12-07T09:18:54.721+00:00"
    told = dict(book["About this export"].iter_rows(values_only=True))
    assert told["List"] == "Production worklist" and told["Filters"] == "group KUDU"
    assert told["Exported at"] == "2026-12-07T09:18:00+00:00" and told["Exported by"] == "Thandi Nkosi"
    assert str(told["Capped"]).startswith("Capped at 40 lines: 20 records exported")


def test_a_primed_fetch_answers_its_first_page_from_what_was_read_and_asks_for_the_rest() -> None:
    source = CursorList([item(n) for n in range(250)])
    first = asyncio.run(source(dict(export.FIRST_PAGE)))
    lines = csv_lines(asyncio.run(collect(export.csv_stream(export.primed(source, first), Walk()))))
    assert len(lines) == 251 and len(source.asked) == 2


def test_a_file_is_named_after_its_list_and_the_minute_in_utc() -> None:
    assert (
        export.file_name("worklist-type-approval", "xlsx", AT) == "worklist-type-approval-20261207T0918Z.xlsx"
    )


def test_a_sparse_page_without_items_but_with_a_next_goes_on() -> None:
    answers = [
        {"items": [item(1)], "next": "a"},
        {"items": [], "next": "b"},
        {"items": [item(2)], "next": None},
    ]

    async def sparse(params: dict[str, Any]) -> dict[str, Any]:
        return answers.pop(0)

    lines = csv_lines(asyncio.run(collect(export.csv_stream(sparse, Walk()))))
    assert [line[0] for line in lines[1:]] == ["WVWZZZ1KZAW000001", "WVWZZZ1KZAW000002"]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_page_not_answered_midway_ends_the_file_with_a_line_saying_so(kind: str) -> None:
    source = CursorList([item(n) for n in range(450)])

    async def faltering(params: dict[str, Any]) -> dict[str, Any]:
        if params.get("after") == "WVWZZZ1KZAW000399":
            raise export.PageUnanswered("http://status.test did not answer: ReadTimeout")
        return await source(params)

    walk = Walk()
    if kind == "csv":
        last = csv_lines(asyncio.run(collect(export.csv_stream(faltering, walk))))[-1][0]
    else:
        data = asyncio.run(collect(export.xlsx_stream(faltering, walk, about())))
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        last = str(list(book["Records"].iter_rows(values_only=True))[-1][0])
        told = dict(book["About this export"].iter_rows(values_only=True))
        assert told["Incomplete"] == last
    assert walk.records == 400 and not walk.capped
    assert last == (
        "Incomplete: http://status.test did not answer: ReadTimeout, so the export stopped after 400 records; "
        "the list holds 450 records. Export again for the whole list."
    )
