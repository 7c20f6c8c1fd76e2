"""Worklists (what waits for a team) and state lists (the records behind one count of the board)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from services.workspace.routes.answers import render
from services.workspace.routes.deps import Pipeline, Reads, Settings, Time, Visitor
from services.workspace.routes.views import FilterForm, Json, ListPage
from shared.contracts.events import State
from shared.contracts.findings import Owner

router = APIRouter(tags=["lists"])


class ListFilters:
    """The filters and page a worklist or a state list is asked for (query parameters)."""

    def __init__(
        self,
        group: Annotated[str, Query(max_length=64)] = "",
        code: Annotated[str, Query(max_length=64)] = "",
        min_age_h: Annotated[float | None, Query(ge=0, le=24 * 365)] = None,
        page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    ) -> None:
        self.group, self.code = group.strip(), code.strip().upper()
        self.min_age_h, self.page_no = min_age_h, page_no

    def api(self, page_size: int) -> dict[str, Any]:
        """The status API's parameters for this page."""
        return {
            "group": self.group,
            "code": self.code,
            "min_age_s": int(self.min_age_h * 3600) if self.min_age_h else None,
            "page": self.page_no,
            "size": page_size,
        }

    def shown(self) -> FilterForm:
        return FilterForm(self.group, self.code, self.min_age_h or "")


Filters = Annotated[ListFilters, Depends()]


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
    """The records behind one count of the board: a state, in a group or all groups."""
    if state is State.ARCHIVED:  # found by VIN; the page says so
        found: Json = {"items": []}
    else:
        found = await reads.read(api.records_in(state.value, **filters.api(config.page_size)), {"items": []})
    view = list_page(
        found, filters, config.page_size, reads.problem, clock.now(), team=None, state=state.value
    )
    return render(request, who, view)


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
    found = await reads.read(api.worklist(team.value, **filters.api(config.page_size)), {"items": []})
    view = list_page(
        found, filters, config.page_size, reads.problem, clock.now(), team=team.value, state=None
    )
    return render(request, who, view)


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
    """One page of a list, with its filters and paging."""
    items = found.get("items", [])
    total = int(found.get("total", len(items)))
    return ListPage(
        team=team,
        state=state,
        action=f"/worklists/{team}" if team else f"/states/{state}",
        items=items,
        total=total,
        page_no=filters.page_no,
        pages=max(1, -(-total // page_size)),
        filters=filters.shown(),
        problem=problem,
        now=now,
    )
