"""Lists exported for the people who work in spreadsheets: CSV and XLSX, streamed, bounded.

An export walks the status API's list page by page (the cursor ``after``, the
answer's ``next``; page numbers where a status service answers without a
cursor), writes one line per finding of each record (a record without findings
gets one line) and stops at ``MAX_ROWS`` lines, at a record's end, saying so in
the file. Times are ISO 8601 in UTC. Each finding carries its next step and who
to ask (``shared.findings``).

A cell a spreadsheet would read as a formula (one starting with = + - @, or a
tab or carriage return before one) is written with a leading apostrophe: the
data come from the MES and the authorities, and a cell must never compute.
(OWASP, "CSV Injection".)
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from openpyxl import Workbook

from services.workspace.audit_chain import safe_cell
from shared.findings import next_step

Json = Mapping[str, Any]
Fetch = Callable[[dict[str, Any]], Awaitable[Json]]  # one page of the list, given the paging parameters

MAX_ROWS = 100_000
PAGE_SIZE = 200  # the status API's largest page
FIRST_PAGE: dict[str, Any] = {"size": PAGE_SIZE}
CHUNK = 64 * 1024
COLUMNS = (
    "VIN",
    "Revision",
    "State",
    "Vehicle group",
    "Record type",
    "Country",
    "Updated",
    "Finding code",
    "Path",
    "Message",
    "Owner",
    "Next step",
    "Who to ask",
)
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

Cell = str | int | None
Row = tuple[Cell, ...]


def neutral(value: Cell) -> Cell:
    """The value as a cell that cannot compute (the audit log's rule): text starting like a formula gets a
    leading apostrophe; numbers stay numbers."""
    return safe_cell(value) if isinstance(value, str) else value


def iso(value: object) -> str:
    """An instant as ISO 8601 in UTC ("2026-12-07T09:18:54.721+00:00"); a text that is no time as it is."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        found = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    found = found.replace(tzinfo=dt.UTC) if found.tzinfo is None else found
    return found.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def rows_of(item: Json) -> list[Row]:
    """The lines of one record: one per finding, each with its next step; one line when it has none."""
    head: Row = (
        str(item.get("vin", "")),
        int(item["revision"]) if isinstance(item.get("revision"), int) else None,
        str(item.get("state", "")),
        str(item.get("vehicle_group") or ""),
        str(item.get("record_type") or ""),
        str(item.get("country") or ""),
        iso(item.get("updated_at")),
    )
    findings: Sequence[Json] = item.get("findings") or []
    if not findings:
        return [(*head, "", "", "", "", "", "")]
    lines: list[Row] = []
    for finding in findings:
        code, owner = str(finding.get("code", "")), str(finding.get("owner", ""))
        step = next_step(code, owner)
        lines.append(
            (
                *head,
                code,
                str(finding.get("path", "")),
                str(finding.get("message", "")),
                owner,
                step.what_to_do,
                step.who_to_ask,
            )
        )
    return lines


class PageUnanswered(Exception):
    """A page after the first was not answered: the file ends there and says so."""


@dataclass
class Walk:
    """How far an export got: lines written, records the list held, whether it stopped at the cap."""

    limit: int = MAX_ROWS
    rows: int = 0
    records: int = 0
    total: int | None = None
    capped: bool = False
    stopped: str | None = None  # why the walk ended before the list did (a page not answered)
    seen: set[str] = field(default_factory=set)


def primed(fetch: Fetch, first: Json) -> Fetch:
    """``fetch`` whose first page (``FIRST_PAGE``) is already read: a route reads it before its answer
    starts, so a status service that does not answer is an error page, not a file cut short."""
    kept = [first]

    async def fetched(params: dict[str, Any]) -> Json:
        if kept and params == FIRST_PAGE:
            return kept.pop()
        return await fetch(params)

    return fetched


async def pages(fetch: Fetch, walk: Walk) -> AsyncIterator[Sequence[Json]]:
    """The list's pages, in order, by cursor (``after``/``next``), or by page number without one."""
    params: dict[str, Any] = dict(FIRST_PAGE)
    number = 1
    while True:
        try:
            found = await fetch(params)
        except PageUnanswered as exc:
            walk.stopped = str(exc)[:300]
            return
        items: Sequence[Json] = found.get("items") or []
        if walk.total is None and "total" in found:
            walk.total = int(found["total"])
        if items:
            yield items
        if "next" in found:  # a sparse search may answer a page with no items and a next to go on
            cursor = found["next"]
            if not cursor or cursor in walk.seen:  # the end, or a cursor that goes round
                return
            walk.seen.add(str(cursor))
            params = {"size": PAGE_SIZE, "after": cursor}
        else:
            if len(items) < PAGE_SIZE:  # includes an empty page
                return
            number += 1
            params = {"size": PAGE_SIZE, "page": number}


async def lines(fetch: Fetch, walk: Walk) -> AsyncIterator[list[Row]]:
    """The export's lines, a page at a time, stopping before the record that would pass the cap."""
    async for items in pages(fetch, walk):
        batch: list[Row] = []
        for item in items:
            rows = rows_of(item)
            if walk.rows + len(rows) > walk.limit:
                walk.capped = True
                break
            batch += rows
            walk.rows += len(rows)
            walk.records += 1
        if batch:
            yield batch
        if walk.capped:
            return


def cap_note(walk: Walk) -> str | None:
    """What the file says when it holds less than the list: cut at the cap, or stopped by a fault."""
    matched = f"; the list holds {walk.total:,} records" if walk.total is not None else ""
    if walk.capped:
        return (
            f"Capped at {walk.limit:,} lines: {walk.records:,} records exported{matched}. "
            "Narrow the filters to export the rest."
        )
    if walk.stopped:
        return (
            f"Incomplete: {walk.stopped}, so the export stopped after {walk.records:,} records{matched}. "
            "Export again for the whole list."
        )
    return None


@dataclass(frozen=True)
class About:
    """What a file says about itself: which list, with which filters, when and for whom."""

    title: str  # "Production worklist", "Records blocked"
    filters: Mapping[str, str]
    at: dt.datetime
    by: str

    def lines(self, walk: Walk) -> list[tuple[str, str]]:
        shown = ", ".join(f"{k} {v}" for k, v in self.filters.items() if v) or "none"
        told = [
            ("List", self.title),
            ("Filters", shown),
            ("Exported at", self.at.astimezone(dt.UTC).isoformat(timespec="seconds")),
            ("Exported by", self.by),
            ("Records", str(walk.records)),
            ("Lines", str(walk.rows)),
            ("Times", "ISO 8601, UTC"),
        ]
        note = cap_note(walk)
        if note:
            told.append(("Capped" if walk.capped else "Incomplete", note))
        return told


def _csv_text(rows: Iterable[Iterable[Cell]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutral(cell) for cell in row])
    return out.getvalue().encode("utf-8")


async def csv_stream(fetch: Fetch, walk: Walk) -> AsyncIterator[bytes]:
    """The list as CSV (UTF-8 with a byte-order mark, so spreadsheets read it as UTF-8), page by page."""
    yield "\ufeff".encode() + _csv_text([COLUMNS])
    async for batch in lines(fetch, walk):
        yield _csv_text(batch)
    note = cap_note(walk)
    if note:
        yield _csv_text([(note,)])


def _xlsx_book() -> tuple[Workbook, Any]:
    book = Workbook(write_only=True)  # rows go to a temporary file as they come, not into memory
    sheet = book.create_sheet("Records")
    sheet.freeze_panes = "A2"
    sheet.append(list(COLUMNS))
    return book, sheet


def _append(sheet: Any, batch: list[Row]) -> None:
    for row in batch:
        sheet.append([neutral(cell) for cell in row])


def _xlsx_finish(book: Workbook, about: About, walk: Walk, target: IO[bytes]) -> None:
    told = book.create_sheet("About this export")
    for name, value in about.lines(walk):
        told.append([neutral(name), neutral(value)])
    book.save(target)


async def xlsx_stream(fetch: Fetch, walk: Walk, about: About) -> AsyncIterator[bytes]:
    """The list as an XLSX workbook (a Records sheet and an About sheet), sent once written."""
    book, sheet = _xlsx_book()
    async for batch in lines(fetch, walk):
        await asyncio.to_thread(_append, sheet, batch)  # writing a page takes tens of ms: off the event loop
    note = cap_note(walk)
    if note:
        sheet.append([neutral(note)])
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as target:
        await asyncio.to_thread(_xlsx_finish, book, about, walk, target)
        target.seek(0)
        for chunk in iter_chunks(target):
            yield chunk


def iter_chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk


def file_name(list_name: str, kind: str, at: dt.datetime) -> str:
    """``worklist-production-20261207T0918Z.xlsx``: the list and the minute in UTC."""
    safe = "".join(c if c.isalnum() or c == "-" else "-" for c in list_name.lower())
    return f"{safe}-{at.astimezone(dt.UTC):%Y%m%dT%H%MZ}.{kind}"
