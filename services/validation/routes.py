"""Validation's HTTP reads: the build of a VIN as received with the decision on it, who waits on an approval,
the plants and vehicle groups it knows, and the release policy its settings give groups no change names.

Reads need any valid bearer token. The workspace shows these as the build record
as received and the approval context of a certificate.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import StringConstraints

from services.validation.adapters.pending import PendingStore
from services.validation.policy import PolicyInForce
from shared.auth import Authenticator

VIN_MAX = 32
# The settings (services.validation.settings) that give a group its release policy unless coc.policies.v1 does.
DEFAULT_POLICY_SETTING = "COC_DEFAULT_RELEASE_POLICY"
GROUP_POLICY_SETTING = "COC_RELEASE_POLICY"
ANSWERS: dict[int | str, dict[str, Any]] = {401: {"description": "No bearer token, or one no role holds"}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Validation has no record of that VIN"}}

MAX_WAITING_KEYS = 50  # approval keys one request of /v1/waiting may name (an upload page asks for 50)


def router(pending: PendingStore, auth: Authenticator, in_force: PolicyInForce) -> APIRouter:
    api = APIRouter(
        prefix="/v1", tags=["validation"], dependencies=[Depends(auth.require())], responses=ANSWERS
    )

    @api.get("/pending/{vin}", responses=NOT_FOUND)
    async def get_pending(vin: str) -> dict[str, Any]:
        """The newest revision of a VIN as received, its decision, reviewer and the approval data used."""
        key = vin.strip().upper()[:VIN_MAX]
        doc = await pending.document(key)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"validation has no record of VIN {key}")
        return {
            "vin": doc["_id"],
            "revision": doc["revision"],
            "state": doc["state"],
            "waiting": doc["waiting"],
            "reviewed_by": doc.get("reviewed_by"),
            "approval_key": doc["approval_key"],
            "approval_sha256": doc.get("approval_sha256"),
            "build": doc["build"],
            "updated_at": doc["updated_at"],
        }

    @api.get("/waiting")
    async def get_waiting(
        approval_key: Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
            Query(
                min_length=1,
                max_length=MAX_WAITING_KEYS,
                description="number|type|variant|version; repeated for several (one read for all)",
            ),
        ],
    ) -> dict[str, Any]:
        """The records that wait on approval versions (blocked, needs review or held), by VIN.

        One key: ``approval_key`` and its ``items``, as before. Several: ``by_key``, each key's items;
        one read of the waiting records for all (a whole collection on FerretDB, see shared.mongo).
        """
        keys = list(dict.fromkeys(approval_key))
        found = await pending.waiting_on_any(keys)
        by_key = {
            key: [
                {"vin": w.build.vin, "revision": w.build.revision}
                for w in sorted(found.get(key, []), key=lambda w: w.build.vin)
            ]
            for key in keys
        }
        return {"approval_key": keys[0], "items": by_key[keys[0]], "by_key": by_key}

    @api.get("/masterdata")
    async def get_master_data() -> dict[str, Any]:
        """The plants and vehicle groups this instance holds builds to (coc.masterdata.v1, as read so far)."""
        policy = in_force.policy
        return {
            "vehicle_groups": sorted(policy.known_groups or ()),
            "plants": sorted(policy.known_plants or ()),
        }

    @api.get("/policy-defaults")
    async def get_policy_defaults() -> dict[str, Any]:
        """The release policy of a group no policy change names: its own in the settings, else the default.

        Each with the setting it comes from, so a page can say where "default" is set.
        """
        base = in_force.base
        return {
            "default": base.default_release_policy.value,
            "default_setting": DEFAULT_POLICY_SETTING,
            "by_group": {group: p.value for group, p in sorted(base.release_policy.items())},
            "by_group_setting": GROUP_POLICY_SETTING,
        }

    return api
