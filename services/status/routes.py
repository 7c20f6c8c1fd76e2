"""Status's HTTP API for ops dashboards, the CLI and the teams: records, readiness, worklists.

Every endpoint is a read: any valid bearer token will do (viewer or a writing role).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from services.status.adapters.records import StatusStore
from shared.auth import Authenticator
from shared.contracts.findings import Owner


def router(store: StatusStore, auth: Authenticator) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["status"], dependencies=[Depends(auth.require())])

    @api.get("/records/{vin}")
    async def get_record(vin: str) -> dict[str, Any]:
        """The VIN's read-model document: current revision, state, findings, owner and last events."""
        key = vin.strip().upper()
        record = await store.get(key)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no status record for VIN {key}")
        return record

    @api.get("/readiness")
    async def get_readiness() -> dict[str, Any]:
        """Vehicles per state, and per vehicle group and state ("unknown" when no event told the group)."""
        return await store.readiness()

    @api.get("/worklist")
    async def get_worklist(
        owner: Annotated[Owner, Query(description="Team whose open findings to list")],
    ) -> dict[str, Any]:
        """Records blocked, waiting for review or held, with the findings ``owner`` must act on, by VIN."""
        return {"owner": owner.value, "items": await store.worklist(owner)}

    return api
