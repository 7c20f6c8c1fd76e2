"""The archived list: archived vehicles searched by the plant dates of their archiving, destination and group.

Served at ``/states/archived`` (before the state lists' ``/states/{state}``),
where the board's archived counts lead. Status answers it from its lanes
(``/v1/records?state=archived``), newest first, a page at a time by cursor:
the page's "Next page" carries status's ``next``. Its export is the state
lists' (``/states/archived/export``) with the same search.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from services.workspace.destinations import NO_COUNTRY, country_name
from services.workspace.routes.answers import render
from services.workspace.routes.deps import Pipeline, Reads, Settings, Time, Visitor
from services.workspace.routes.lists import facets
from services.workspace.routes.views import Choices, Json, choices_of

if TYPE_CHECKING:
    from services.workspace.routes.views import Page

router = APIRouter(tags=["lists"])
CURSOR_MAX = 200


@dataclass(frozen=True)
class ArchivedForm:
    """The search as its form shows it (an unset value is an empty box)."""

    archived_from: str = ""
    archived_to: str = ""
    country: str = ""
    group: str = ""
    record_type: str = ""

    @property
    def any_set(self) -> bool:
        return any(asdict(self).values())


class ArchivedSearch:
    """The archived list's search and cursor (query parameters)."""

    def __init__(
        self,
        archived_from: Annotated[dt.date | None, Query()] = None,
        archived_to: Annotated[dt.date | None, Query()] = None,
        country: Annotated[str, Query(max_length=4, pattern="^([A-Za-z]{1,3}|[Nn][Oo][Nn][Ee])?$")] = "",
        group: Annotated[str, Query(max_length=64)] = "",
        record_type: Annotated[str, Query(max_length=1, pattern="^[CIVciv]?$")] = "",
        after: Annotated[str, Query(max_length=CURSOR_MAX, pattern="^[A-Za-z0-9_-]*$")] = "",
    ) -> None:
        self.form = ArchivedForm(
            archived_from.isoformat() if archived_from else "",
            archived_to.isoformat() if archived_to else "",
            NO_COUNTRY if country.lower() == NO_COUNTRY else country.upper(),
            group.strip(),
            record_type.upper(),
        )
        self.after = after

    def api(self, size: int) -> dict[str, Any]:
        """Status's parameters for this page."""
        asked = {**asdict(self.form), "after": self.after, "size": size}
        return {k: v for k, v in asked.items() if v}

    def query(self) -> str:
        """The search as a query string (for the pager and the export links)."""
        return urlencode({k: v for k, v in asdict(self.form).items() if v})


@dataclass(frozen=True)
class ArchivedPage:
    """One page of the archived list."""

    template: ClassVar[str] = "archived.html"
    items: Sequence[Json]
    total: int
    searched_from: str  # the days status searched (its defaults when the form left them empty)
    searched_to: str
    filters: ArchivedForm
    choices: Choices | None
    next: str | None
    after: str
    query: str
    problem: str | None
    now: dt.datetime
    export_max: int = 100_000


@router.get("/states/archived", response_class=HTMLResponse)
async def archived_list(
    request: Request,
    who: Visitor,
    search: Annotated[ArchivedSearch, Depends()],
    api: Pipeline,
    config: Settings,
    clock: Time,
    reads: Reads,
) -> HTMLResponse:
    """Archived vehicles, newest first, searched by archive date range, destination, group and type."""
    found = await reads.read(api.records_in("archived", **search.api(config.page_size)), {"items": []})
    items = [{**item, "country_name": _named(item.get("country"))} for item in found.get("items") or []]
    page = ArchivedPage(
        items=items,
        total=int(found.get("total", len(items))),
        searched_from=str(found.get("archived_from") or search.form.archived_from),
        searched_to=str(found.get("archived_to") or search.form.archived_to),
        filters=search.form,
        choices=choices_of(await facets(api)),
        next=found.get("next") if isinstance(found.get("next"), str) else None,
        after=search.after,
        query=search.query(),
        problem=reads.problem,
        now=clock.now(),
    )
    return render(request, who, cast("Page", page))  # a page of its own, outside views' union


def _named(code: object) -> str:
    return country_name(str(code)) if code else "–"
