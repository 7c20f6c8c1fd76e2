"""Worklists (what waits for a team) and state lists (the records behind one count of the board), and their exports.

A list's filters are choices of the values that exist (status's facets) and
each finding shows its next step and who to ask. Any list exports as CSV or
XLSX with its filters (``services.workspace.export``): streamed, at most
100,000 lines. Any signed-in person may export what the list shows them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from services.workspace import export
from services.workspace.adapters.pipeline import PipelineApi, PipelineUnavailable
from services.workspace.routes.answers import render
from services.workspace.routes.deps import Pipeline, Reads, Settings, Time, Visitor
from services.workspace.routes.views import (
    RECORD_TYPES,
    FilterForm,
    Json,
    ListPage,
    choices_of,
    explained,
)
from shared.contracts.events import State
from shared.contracts.findings import Owner
from shared.findings import ASK, CATALOGUE, Entry

if TYPE_CHECKING:
    from services.workspace.routes.views import Page

router = APIRouter(tags=["lists"])
NO_COUNTRY = "none"
Kind = Literal["csv", "xlsx"]
EXPORT_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The list as a file: CSV or XLSX, one line per finding, at most 100,000 lines",
        "content": {media: {} for media in export.MEDIA.values()},
    },
    503: {"description": "The status service did not answer"},
}


class ListFilters:
    """The filters and page a worklist or a state list is asked for (query parameters)."""

    def __init__(
        self,
        group: Annotated[str, Query(max_length=64)] = "",
        code: Annotated[str, Query(max_length=64)] = "",
        record_type: Annotated[str, Query(max_length=1, pattern="^[CIVciv]?$")] = "",
        country: Annotated[str, Query(max_length=4, pattern="^([A-Za-z]{1,3}|[Nn][Oo][Nn][Ee])?$")] = "",
        min_age_h: Annotated[float | None, Query(ge=0, le=24 * 365)] = None,
        archived_from: Annotated[dt.date | None, Query()] = None,
        archived_to: Annotated[dt.date | None, Query()] = None,
        page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    ) -> None:
        self.group, self.code = group.strip(), code.strip().upper()
        # A Vienna code, or "none": the records without an intended country (as status names them).
        self.record_type = record_type.upper()
        self.country = NO_COUNTRY if country.lower() == NO_COUNTRY else country.upper()
        self.min_age_h, self.page_no = min_age_h, page_no
        self.archived_from, self.archived_to = archived_from, archived_to

    def chosen(self) -> dict[str, Any]:
        """The status API's filter parameters (those set)."""
        asked = {
            "group": self.group,
            "code": self.code,
            "record_type": self.record_type,
            "country": self.country,
            "min_age_s": int(self.min_age_h * 3600) if self.min_age_h else None,
        }
        return {k: v for k, v in asked.items() if v not in (None, "")}

    def chosen_for(self, state: State) -> dict[str, Any]:
        """The filters of a state list: the archived list's dates besides (status takes them there alone)."""
        if state is not State.ARCHIVED:
            return self.chosen()
        dates = {"archived_from": self.archived_from, "archived_to": self.archived_to}
        return {**self.chosen(), **{k: v.isoformat() for k, v in dates.items() if v is not None}}

    def api(self, page_size: int, state: State | None = None) -> dict[str, Any]:
        """The status API's parameters for this page."""
        chosen = self.chosen_for(state) if state is not None else self.chosen()
        return {**chosen, "page": self.page_no, "size": page_size}

    def shown(self) -> FilterForm:
        return FilterForm(
            self.group,
            self.code,
            self.min_age_h or "",
            self.record_type,
            self.country,
            self.archived_from.isoformat() if self.archived_from else "",
            self.archived_to.isoformat() if self.archived_to else "",
        )

    def query(self) -> str:
        """The filters as the page's own query string (for its pager and its export links)."""
        shown = {k: v for k, v in vars(self.shown()).items() if str(v)}
        return urlencode(shown)

    def named(self) -> dict[str, str]:
        """The filters as an export's About sheet names them."""
        shown = self.shown()
        return {
            "group": shown.group,
            "finding code": shown.code,
            "record type": RECORD_TYPES.get(shown.record_type, shown.record_type),
            "country": shown.country,
            "waiting at least (hours)": str(shown.min_age_h),
            "archived from": shown.archived_from,
            "archived to": shown.archived_to,
        }


Filters = Annotated[ListFilters, Depends()]


async def facets(api: PipelineApi) -> Json:
    """Status's filter choices; nothing when it cannot say (the filters are then text boxes)."""
    try:
        return await api.facets()
    except PipelineUnavailable:
        return {}


@router.get("/states/{state}", response_class=HTMLResponse)
async def state_list(
    request: Request,
    who: Visitor,
    state: State,
    filters: Filters,
    api: Pipeline,
    config: Settings,
    clock: Time,
    reads: Reads,
) -> HTMLResponse:
    """The records behind one count of the board: a state, in a group or all groups.

    The archived state has its own page (``routes.archived``, served first); its export is this room's.
    """
    found, choices = await asyncio.gather(
        reads.read(api.records_in(state.value, **filters.api(config.page_size, state)), {"items": []}),
        facets(api),
    )
    view = list_page(
        found, filters, config.page_size, reads.problem, clock.now(), team=None, state=state.value
    )
    return render(request, who, with_choices(view, choices))


@router.get("/worklists/{team}", response_class=HTMLResponse)
async def worklist(
    request: Request,
    who: Visitor,
    team: Owner,
    filters: Filters,
    api: Pipeline,
    config: Settings,
    clock: Time,
    reads: Reads,
) -> HTMLResponse:
    found, choices = await asyncio.gather(
        reads.read(api.worklist(team.value, **filters.api(config.page_size)), {"items": []}), facets(api)
    )
    view = list_page(
        found, filters, config.page_size, reads.problem, clock.now(), team=team.value, state=None
    )
    return render(request, who, with_choices(view, choices))


@router.get("/worklists/{team}/export", response_class=StreamingResponse, responses=EXPORT_ANSWERS)
async def worklist_export(
    who: Visitor,
    team: Owner,
    filters: Filters,
    api: Pipeline,
    clock: Time,
    kind: Annotated[Kind, Query(alias="format")] = "csv",
) -> StreamingResponse:
    """The team's worklist with its filters, as CSV or XLSX: one line per finding, with its next step."""

    async def fetch(paging: dict[str, Any]) -> Json:
        return await api.worklist(team.value, **filters.chosen(), **paging)

    title = f"{team.value.capitalize()} worklist"
    return await exported(fetch, kind, f"worklist-{team.value}", title, filters, who.person.name, clock.now())


@router.get("/states/{state}/export", response_class=StreamingResponse, responses=EXPORT_ANSWERS)
async def state_export(
    who: Visitor,
    state: State,
    filters: Filters,
    api: Pipeline,
    clock: Time,
    kind: Annotated[Kind, Query(alias="format")] = "csv",
) -> StreamingResponse:
    """The records in one state with the list's filters, as CSV or XLSX: one line per finding."""

    async def fetch(paging: dict[str, Any]) -> Json:
        return await api.records_in(state.value, **filters.chosen_for(state), **paging)

    title = f"Records {state.value.replace('_', ' ')}"
    return await exported(fetch, kind, f"records-{state.value}", title, filters, who.person.name, clock.now())


async def exported(
    fetch: export.Fetch,
    kind: Kind,
    name: str,
    title: str,
    filters: ListFilters,
    by: str,
    at: dt.datetime,
) -> StreamingResponse:
    """The streamed file. The first page is read before the answer starts, so a status that does not
    answer is a 503 with its reason, not a file cut short."""

    async def later(paging: dict[str, Any]) -> Json:
        try:
            return await fetch(paging)
        except PipelineUnavailable as exc:  # the answer has begun: the file ends here and says why
            raise export.PageUnanswered(str(exc)) from None

    pages = export.primed(later, await fetch(export.FIRST_PAGE))
    walk = export.Walk()
    about = export.About(title, filters.named(), at, by)
    body = export.csv_stream(pages, walk) if kind == "csv" else export.xlsx_stream(pages, walk, about)
    headers = {
        "Content-Disposition": f'attachment; filename="{export.file_name(name, kind, at)}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(body, media_type=export.MEDIA[kind], headers=headers)


@dataclass(frozen=True)
class FindingsPage:
    """The finding catalogue as a page: every code, its next step, whom to ask and the rule's source."""

    template: ClassVar[str] = "findings.html"
    teams: list[tuple[str, list[Entry]]]  # (who to ask, their codes), in the catalogue's order of people
    ask: dict[str, str]


@router.get("/findings", response_class=HTMLResponse)
async def finding_codes(request: Request, who: Visitor) -> HTMLResponse:
    """Every finding code the pipeline emits, with what a person does about it (``shared.findings``)."""
    by_ask = {key: sorted((e for e in CATALOGUE if e.ask == key), key=lambda e: e.code) for key in ASK}
    page = FindingsPage([(key, entries) for key, entries in by_ask.items() if entries], dict(ASK))
    return render(request, who, cast("Page", page))  # a page of its own, outside views' union


def with_choices(view: ListPage, facets: Json) -> ListPage:
    return replace(view, choices=choices_of(facets))


def list_page(
    found: Json,
    filters: ListFilters,
    page_size: int,
    problem: str | None,
    now: dt.datetime,
    *,
    team: str | None,
    state: str | None,
) -> ListPage:
    """One page of a list, with its filters and paging; each finding with its next step."""
    items = found.get("items", [])
    total = int(found.get("total", len(items)))
    return ListPage(
        team=team,
        state=state,
        action=f"/worklists/{team}" if team else f"/states/{state}",
        items=[explained(item) for item in items],
        total=total,
        page_no=filters.page_no,
        pages=max(1, -(-total // page_size)),
        filters=filters.shown(),
        problem=problem,
        now=now,
        query=filters.query(),
        export_max=export.MAX_ROWS,
    )
