"""Rollout: the vehicle groups and plants builds may name (master data), and each group's release policy.

Both are the compliance lead's. A policy is set only for a known group: a name
typed wrong would otherwise become a policy nobody uses, while the builds of the
real group follow another one. A new group is added on purpose (its own form,
which also sets its first policy), and so is a plant.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from services.workspace.routes.answers import redirect, render, see_other
from services.workspace.routes.deps import (
    Audit,
    Lead,
    Master,
    Pipeline,
    Policies,
    Reads,
    Time,
    Topics,
    Visitor,
)
from services.workspace.routes.views import RolloutPage, RolloutRow, settings_policy
from shared import topics
from shared.contracts.base import reason_of
from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.contracts.policies import PolicyChange, ReleasePolicy
from shared.master_table import MasterTable

router = APIRouter(tags=["rollout"])

REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"description": "A group not in the master data, or a name with characters a name may not hold"}
}


@router.get("/rollout", response_class=HTMLResponse)
async def rollout(
    request: Request,
    who: Visitor,
    api: Pipeline,
    table: Policies,
    master: Master,
    audit: Audit,
    reads: Reads,
    done: str | None = None,
    added: str | None = None,
) -> HTMLResponse:
    """Every known group, every group the board counts or a policy names (unknown ones marked), the plants."""
    seen = set((await reads.read(api.readiness(), {})).get("by_group", {}))
    seen.discard("unknown")
    known = master.known(MasterKind.VEHICLE_GROUP)
    defaults = await reads.read(api.policy_defaults(), {})
    rows = [
        RolloutRow(
            group,
            table.get(group),
            await audit.for_target(f"group:{group}", limit=5),
            group in known,
            settings_policy(defaults, group),
        )
        for group in sorted(seen | set(table.groups()) | known)
    ]
    view = RolloutPage(
        rows=rows,
        policies=[p.value for p in ReleasePolicy],
        problem=reads.problem,
        done=done,
        plants=sorted(master.known(MasterKind.PLANT)),
        added=added,
        default=settings_policy(defaults),
    )
    return render(request, who, view)


@router.post("/rollout", **redirect("Set: back to the rollout page, which says so", REFUSED))
async def set_policy(
    who: Lead,
    group: Annotated[str, Form(min_length=1, max_length=64)],
    policy: Annotated[ReleasePolicy, Form()],
    emitter: Topics,
    table: Policies,
    master: Master,
    audit: Audit,
    clock: Time,
    comment: Annotated[str, Form(max_length=2000)] = "",
    new: Annotated[bool, Form(description="add the group to the master data first")] = False,
) -> Response:
    group, at = group.strip(), clock.now()
    if new:
        await add_name(who, MasterKind.VEHICLE_GROUP, group, comment, emitter, master, audit, at)
    elif not master.is_known(MasterKind.VEHICLE_GROUP, group):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"group: vehicle group {group!r} is not in the master data; add it as a new group first",
        )
    before = table.get(group)
    change = PolicyChange(
        vehicle_group=group, policy=policy, set_by=who.person.name, set_at=at, comment=comment.strip() or None
    )
    await emitter.send(topics.POLICIES, change, key=group, correlation_id=f"policy:{group}")
    table.add(change)
    before_text = before.policy.value if before else "default"
    audited = {"policy": [before_text, policy.value], "comment": change.comment}
    await audit.record(who.person, "policy", f"group:{group}", audited, change.set_at)
    return see_other(f"/rollout?done={quote(group)}")


@router.post("/rollout/plants", **redirect("Added: back to the rollout page, which says so", REFUSED))
async def add_plant(
    who: Lead,
    plant: Annotated[str, Form(min_length=1, max_length=64)],
    emitter: Topics,
    master: Master,
    audit: Audit,
    clock: Time,
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A plant builds may name from now on; the builds blocked on it move on."""
    name = plant.strip()
    await add_name(who, MasterKind.PLANT, name, comment, emitter, master, audit, clock.now())
    return see_other(f"/rollout?added={quote(name)}")


async def add_name(
    who: Lead,
    kind: MasterKind,
    name: str,
    comment: str,
    emitter: Topics,
    master: MasterTable,
    audit: Audit,
    at: dt.datetime,
) -> None:
    """Publish ``name`` as known (coc.masterdata.v1) and audit it; 422 naming the field for a name refused."""
    field = "group" if kind is MasterKind.VEHICLE_GROUP else "plant"
    try:
        change = MasterDataChange(
            kind=kind, name=name, set_by=who.person.name, set_at=at, comment=comment.strip() or None
        )
    except ValidationError as exc:
        reason = "; ".join(reason_of(err) for err in exc.errors(include_url=False))
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: {reason}") from None
    if master.is_known(kind, name):
        return
    await emitter.send(topics.MASTERDATA, change, key=change.key, correlation_id=f"masterdata:{change.key}")
    master.add(change)
    target = (
        f"group:{name}" if kind is MasterKind.VEHICLE_GROUP else f"plant:{name}"
    )  # as its history is read
    await audit.record(who.person, "master data", target, {"known": [False, True]}, change.set_at)
