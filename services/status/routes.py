"""Status's HTTP API for ops dashboards, the CLI and the teams: records, readiness, worklists.

Every endpoint is a read: any valid bearer token will do (viewer or a writing role).
"""

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from services.status.adapters.archived import ArchivedLanes
from services.status.adapters.counters import Counters
from services.status.adapters.worklists import ListsNotReady, Worklists
from services.status.adapters.writer import RecordWriter
from services.status.archived import ArchivedQuery, BadArchivedQuery, Position
from services.status.worklist import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, BadCursor, Cursor, ListQuery
from shared.auth import Authenticator
from shared.contracts.approvals import RecordType
from shared.contracts.events import State
from shared.contracts.findings import Owner

READINESS_TTL = 2.0  # seconds one readiness count serves every caller
ARCHIVED_DAYS = 365  # plant days an archived search spans when archived_from is not given
COUNTRY = r"^([A-Z]{1,3}|none)$"  # a Vienna code, or none: the records without an intended country
MAX_AGE_S = 100 * 365 * 24 * 3600  # an age filter beyond a century means nothing (and overflows dates)
MAX_PAGE = 1_000_000
ANSWERS: dict[int | str, dict[str, Any]] = {401: {"description": "No bearer token, or one no role holds"}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No status record for that VIN"}}
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "The view of waiting records is being read after a start; try again (Retry-After)"}
}


class SharedResult:
    """One computation at a time, its result served to every caller for ``ttl`` seconds.

    Readiness reads every counter document; a wall of dashboards polling at once
    shares one read. Callers that arrive while a read runs wait for that read.
    The age of a result is measured from when its computation started.
    """

    def __init__(
        self,
        compute: Callable[[], Awaitable[dict[str, Any]]],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute, self._ttl, self._clock = compute, ttl, clock
        self._lock = asyncio.Lock()
        self._value: dict[str, Any] | None = None
        self._started = 0.0

    def _fresh(self) -> dict[str, Any] | None:
        if self._value is not None and self._clock() - self._started < self._ttl:
            return self._value
        return None

    async def get(self) -> dict[str, Any]:
        value = self._fresh()
        if value is not None:
            return value
        async with self._lock:
            value = self._fresh()
            if value is None:
                started, wall = self._clock(), dt.datetime.now(dt.UTC)
                value = {**await self._compute(), "as_of": wall.isoformat()}
                self._value, self._started = value, started
            return value


class ListFilters:
    """The filters and paging both lists take (a FastAPI dependency: query parameters)."""

    def __init__(
        self,
        group: Annotated[
            str | None, Query(min_length=1, max_length=64, description="Only this vehicle group")
        ] = None,
        code: Annotated[
            str | None, Query(min_length=1, max_length=64, description="Only records with this finding code")
        ] = None,
        min_age_s: Annotated[
            int | None,
            Query(ge=0, le=MAX_AGE_S, description="Only records unchanged for at least this many seconds"),
        ] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1")] = 1,
        size: Annotated[
            int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Records per page, at most {MAX_PAGE_SIZE}")
        ] = DEFAULT_PAGE_SIZE,
        record_type: Annotated[
            RecordType | None,
            Query(description="Only this record type: C complete, I incomplete, V completed"),
        ] = None,
        country: Annotated[
            str | None,
            Query(
                pattern=COUNTRY,
                description="Only this destination (Vienna code of the intended country), or none",
            ),
        ] = None,
        after: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=200,
                description="The page after this cursor (the next of the page before) instead of page",
            ),
        ] = None,
    ) -> None:
        self.group, self.code, self.min_age_s, self.page, self.size = group, code, min_age_s, page, size
        self.record_type, self.country, self.after = record_type, country, after

    def query(self, owner: Owner | None = None, state: State | None = None) -> ListQuery:
        try:
            after = Cursor.parse(self.after) if self.after else None
        except BadCursor as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        return ListQuery(
            owner,
            state,
            self.group,
            self.code,
            self.min_age_s,
            self.page,
            self.size,
            self.record_type,
            self.country,
            after,
        )

    def archived(self, first: dt.date | None, last: dt.date | None, zone: dt.tzinfo) -> ArchivedQuery:
        """The search of the archived list these parameters ask for (its days in the plant's calendar)."""
        if self.code is not None or self.min_age_s is not None:
            name = "code" if self.code is not None else "min_age_s"
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: not a filter of archived records"
            )
        last = last or dt.datetime.now(zone).date()
        first = first or last - dt.timedelta(days=ARCHIVED_DAYS - 1)
        try:
            after = Position.parse(self.after) if self.after else None
            return ArchivedQuery(
                first, last, self.country, self.group, self.record_type, self.size, self.page, after
            )
        except BadArchivedQuery as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def router(
    records: RecordWriter,
    counters: Counters,
    worklists: Worklists,
    auth: Authenticator,
    behind: Callable[[], int | None] = lambda: None,
    readiness_ttl: float = READINESS_TTL,
    archived: ArchivedLanes | None = None,
    zone: dt.tzinfo = dt.UTC,
) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["status"], dependencies=[Depends(auth.require())], responses=ANSWERS)
    readiness = SharedResult(counters.readiness, readiness_ttl)
    facets = SharedResult(counters.facets, readiness_ttl)

    async def listed(query: ListQuery) -> dict[str, Any]:
        try:
            return await worklists.page(query)
        except ListsNotReady as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}
            ) from None

    @api.get("/records/{vin}", responses=NOT_FOUND)
    async def get_record(vin: str) -> dict[str, Any]:
        """The VIN's read-model document: current revision, state, findings, owner and last events."""
        key = vin.strip().upper()
        record = await records.get(key)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no status record for VIN {key}")
        return record.model_dump(mode="json")

    @api.get("/readiness")
    async def get_readiness() -> dict[str, Any]:
        """The readiness board, from counters kept as events are folded (no record is counted here).

        ``total``; ``by_state``; ``by_group`` (group → state → vehicles, "unknown" when no event told
        the group); ``by_country`` (destination, the intended country's Vienna code → state →
        vehicles, "none" when the build named none); ``by_record_type`` (C complete, I incomplete,
        V completed → state → vehicles, "none" while no event told the type); ``deliveries`` (destination → delivery state →
        archived vehicles whose certificate's delivery stands there); ``archived_last_hour`` and ``archived_last_day`` (vehicles whose current
        certificate was archived then; the day in whole hours); ``open_findings_by_owner`` (findings
        of records waiting for a person, per owning team); ``waiting_by_owner`` (those records per
        team: the size of its worklist). Read at most once per two seconds for all callers;
        ``as_of`` says when. ``events_behind``: status events on the topic not yet counted (after
        a burst the read model catches up; null until the service has read its topic).
        """
        return {**await readiness.get(), "events_behind": behind()}

    @api.get("/facets")
    async def get_facets() -> dict[str, Any]:
        """The values the lists' filters can take now: ``groups``, finding ``codes`` (of records waiting
        for a person), ``record_types`` and ``countries`` some record has, sorted; from the board's
        counters (no record is read), at most once per two seconds for all callers."""
        return await facets.get()

    @api.get("/worklist", responses=NOT_READY)
    async def get_worklist(
        owner: Annotated[Owner, Query(description="Team whose worklist to show")],
        filters: Annotated[ListFilters, Depends()],
    ) -> dict[str, Any]:
        """Records waiting for a person (blocked, needs review, held) with findings ``owner`` must act on.

        Oldest first (by the time of the record's last change, then VIN): the order a team works
        through them. Each item: vin, record_id, revision, state, vehicle_group, updated_at, age_s
        record_type, country and the team's findings (code, path, message, severity, owner).
        Filters: group, code, record_type, country (a Vienna code, or none), min_age_s. ``total``
        counts every matching record; ``next`` is the cursor of the page after (null on the last):
        pass it as ``after`` to walk the list without page numbers. ``as_of`` says when the view of
        waiting records was taken. 503 with Retry-After while the view is first read after a start.
        """
        return await listed(filters.query(owner=owner))

    @api.get("/records", responses=NOT_READY)
    async def list_records(
        state: Annotated[State, Query(description="State of the records to list")],
        filters: Annotated[ListFilters, Depends()],
        archived_from: Annotated[
            dt.date | None,
            Query(description="Archived: from this plant date on (default: a year before archived_to)"),
        ] = None,
        archived_to: Annotated[
            dt.date | None, Query(description="Archived: up to this plant date, inclusive (default: today)")
        ] = None,
    ) -> dict[str, Any]:
        """The records now in ``state``: what a count of the readiness board stands for.

        Every state but archived oldest first, items as in ``/v1/worklist`` with all the record's
        findings. Archived newest first, searched by the plant dates of their archiving
        (``archived_from``, ``archived_to``, dates in COC_PLANT_TIMEZONE; a year up to today by
        default), ``country``, ``group`` and ``record_type``, from lanes read by key (no scan); go on
        with ``after`` = ``next`` (a page may hold fewer than ``size`` when the search is sparse: the
        walk answers after a bounded number of reads, and ``next`` goes on from there).
        """
        if state is State.ARCHIVED:
            if archived is None:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, "state: archived records are not listed here"
                )
            return await archived.page(filters.archived(archived_from, archived_to, zone))
        if archived_from is not None or archived_to is not None:
            name = "archived_from" if archived_from is not None else "archived_to"
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: only for state archived")
        return await listed(filters.query(state=state))

    return api
