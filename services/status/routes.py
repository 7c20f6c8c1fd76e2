"""Status's HTTP API for ops dashboards, the CLI and the teams: records, readiness, worklists.

Every endpoint is a read: any valid bearer token will do (viewer or a writing role).
"""

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from services.status.adapters.records import StatusStore
from shared.auth import Authenticator
from shared.contracts.findings import Owner

READINESS_TTL = 2.0  # seconds one readiness count serves every caller


class SharedResult:
    """One computation at a time, its result served to every caller for ``ttl`` seconds.

    Readiness counts every record (a ``$group`` in the server's memory, see
    ``shared.mongo``), so a wall of dashboards polling at once would otherwise each pay for a
    full scan. Callers that arrive while a count runs wait for that count.
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


def router(store: StatusStore, auth: Authenticator, readiness_ttl: float = READINESS_TTL) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["status"], dependencies=[Depends(auth.require())])
    readiness = SharedResult(store.readiness, readiness_ttl)

    @api.get("/records/{vin}")
    async def get_record(vin: str) -> dict[str, Any]:
        """The VIN's read-model document: current revision, state, findings, owner and last events."""
        key = vin.strip().upper()
        record = await store.get(key)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no status record for VIN {key}")
        return record.model_dump(mode="json")

    @api.get("/readiness")
    async def get_readiness() -> dict[str, Any]:
        """Vehicles per state, and per vehicle group and state ("unknown" when no event told the group).

        Counted at most once per two seconds for all callers; ``as_of`` says when.
        """
        return await readiness.get()

    @api.get("/worklist")
    async def get_worklist(
        owner: Annotated[Owner, Query(description="Team whose open findings to list")],
    ) -> dict[str, Any]:
        """Records blocked, waiting for review or held, with the findings ``owner`` must act on, by VIN."""
        return {"owner": owner.value, "items": await store.worklist(owner)}

    return api
