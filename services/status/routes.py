"""Status's HTTP API for ops dashboards, the CLI and the teams: records, readiness, worklists.

Every endpoint is a read: any valid bearer token will do (viewer or a writing role).
"""

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from services.status.adapters.counters import Counters
from services.status.adapters.worklists import ListsNotReady, Worklists
from services.status.adapters.writer import RecordWriter
from services.status.worklist import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ListQuery
from shared.auth import Authenticator
from shared.contracts.events import State
from shared.contracts.findings import Owner

READINESS_TTL = 2.0  # seconds one readiness count serves every caller
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
    ) -> None:
        self.group, self.code, self.min_age_s, self.page, self.size = group, code, min_age_s, page, size

    def query(self, owner: Owner | None = None, state: State | None = None) -> ListQuery:
        return ListQuery(owner, state, self.group, self.code, self.min_age_s, self.page, self.size)


def router(
    records: RecordWriter,
    counters: Counters,
    worklists: Worklists,
    auth: Authenticator,
    behind: Callable[[], int | None] = lambda: None,
    readiness_ttl: float = READINESS_TTL,
) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["status"], dependencies=[Depends(auth.require())], responses=ANSWERS)
    readiness = SharedResult(counters.readiness, readiness_ttl)

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
        the group); ``archived_last_hour`` and ``archived_last_day`` (vehicles whose current
        certificate was archived then; the day in whole hours); ``open_findings_by_owner`` (findings
        of records waiting for a person, per owning team); ``waiting_by_owner`` (those records per
        team: the size of its worklist). Read at most once per two seconds for all callers;
        ``as_of`` says when. ``events_behind``: status events on the topic not yet counted (after
        a burst the read model catches up; null until the service has read its topic).
        """
        return {**await readiness.get(), "events_behind": behind()}

    @api.get("/worklist", responses=NOT_READY)
    async def get_worklist(
        owner: Annotated[Owner, Query(description="Team whose worklist to show")],
        filters: Annotated[ListFilters, Depends()],
    ) -> dict[str, Any]:
        """Records waiting for a person (blocked, needs review, held) with findings ``owner`` must act on.

        Oldest first (by the time of the record's last change, then VIN): the order a team works
        through them. Each item: vin, record_id, revision, state, vehicle_group, updated_at, age_s
        and the team's findings (code, path, message, severity, owner). ``total`` counts every
        matching record; ``as_of`` says when the view of waiting records was taken. 503 with
        Retry-After while the view is first read after a start.
        """
        return await listed(filters.query(owner=owner))

    @api.get("/records", responses=NOT_READY)
    async def list_records(
        state: Annotated[State, Query(description="State of the records to list (not archived)")],
        filters: Annotated[ListFilters, Depends()],
    ) -> dict[str, Any]:
        """The records now in ``state``, oldest first: what a count of the readiness board stands for.

        Every state but archived (archived certificates are found by VIN: ``/v1/records/{vin}`` and
        the archive). Items as in ``/v1/worklist``, with all the record's findings. 422 for archived.
        """
        if state is State.ARCHIVED:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "state: archived records are not listed; look one up by VIN",
            )
        return await listed(filters.query(state=state))

    return api
