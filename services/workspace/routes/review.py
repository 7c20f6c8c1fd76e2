"""A reviewer's decision on a record that waits for one: accept or reject, with their name on it.

Only a record waiting for a review of that very revision (``needs_review``) is
decided: for anything else (another revision, a blocked record whose error no
person can settle, a held one, one on its way) the answer is 409, and nothing
is sent or written to the audit log.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, status
from fastapi.responses import Response

from services.workspace.routes.answers import redirect, see_other
from services.workspace.routes.deps import Audit, Pipeline, Reviewer, Time, Topics, Vin
from services.workspace.routes.views import awaits_review
from shared import topics
from shared.contracts.base import Text
from shared.contracts.events import Decision, Review

router = APIRouter(tags=["review"])


@router.post(
    "/records/{vin}/review",
    **redirect(
        "Decided: back to the record's page, which says so",
        {409: {"description": "The record is not waiting for a review of that revision"}},
    ),
)
async def review(
    vin: Vin,
    who: Reviewer,
    revision: Annotated[int, Form(ge=1)],
    decision: Annotated[Decision, Form()],
    api: Pipeline,
    emitter: Topics,
    audit: Audit,
    clock: Time,
    comment: Annotated[Text, Form(max_length=2000)] = "",
) -> Response:
    record = await api.record(vin)
    if record is None or record["revision"] != revision or not awaits_review(record):
        raise HTTPException(status.HTTP_409_CONFLICT, f"{vin}:{revision} is not waiting for a review")
    if decision is Decision.REJECT and not comment.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "comment: say why the record is rejected")
    decided = Review(
        vin=vin, revision=revision, decision=decision, reviewer=who.person.name, comment=comment.strip()
    )
    await emitter.send(topics.REVIEWS, decided, key=vin, correlation_id=f"{vin}:{revision}")
    change = {"revision": revision, "decision": decision.value, "comment": decided.comment}
    await audit.record(who.person, f"review:{decision.value}", f"record:{vin}", change, clock.now())
    return see_other(f"/records/{quote(vin)}?done={decision.value}")
