"""Rollout: the release policy of each vehicle group, and a compliance lead's change of it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.workspace.routes.answers import redirect, render, see_other
from services.workspace.routes.deps import Audit, Lead, Pipeline, Policies, Reads, Time, Topics, Visitor
from services.workspace.routes.views import RolloutPage, RolloutRow
from shared import topics
from shared.contracts.policies import PolicyChange, ReleasePolicy

router = APIRouter(tags=["rollout"])


@router.get("/rollout", response_class=HTMLResponse)
async def rollout(
    request: Request,
    who: Visitor,
    api: Pipeline,
    table: Policies,
    audit: Audit,
    reads: Reads,
    done: str | None = None,
) -> HTMLResponse:
    """Every group the board counts or a policy names; the status service away, those with a policy."""
    known = set((await reads.read(api.readiness(), {})).get("by_group", {}))
    known.discard("unknown")
    rows = [
        RolloutRow(group, table.get(group), await audit.for_target(f"group:{group}", limit=5))
        for group in sorted(known | set(table.groups()))
    ]
    view = RolloutPage(rows=rows, policies=[p.value for p in ReleasePolicy], problem=reads.problem, done=done)
    return render(request, who, view)


@router.post("/rollout", **redirect("Set: back to the rollout page, which says so"))
async def set_policy(
    who: Lead,
    group: Annotated[str, Form(min_length=1, max_length=64)],
    policy: Annotated[ReleasePolicy, Form()],
    emitter: Topics,
    table: Policies,
    audit: Audit,
    clock: Time,
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    group = group.strip()
    before = table.get(group)
    change = PolicyChange(
        vehicle_group=group,
        policy=policy,
        set_by=who.person.name,
        set_at=clock.now(),
        comment=comment.strip() or None,
    )
    await emitter.send(topics.POLICIES, change, key=group, correlation_id=f"policy:{group}")
    table.add(change)
    before_text = before.policy.value if before else "default"
    audited = {"policy": [before_text, policy.value], "comment": change.comment}
    await audit.record(who.person, "policy", f"group:{group}", audited, change.set_at)
    return see_other(f"/rollout?done={quote(group)}")
