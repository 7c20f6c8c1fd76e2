"""Validation's subscribers: accepted records, approvals, reviews and policy changes in; decisions out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.validation.adapters.pending import PendingStore
from services.validation.decide import (
    WAITING,
    NotWaiting,
    Outcome,
    decide,
    redecide,
    rejected_by_review,
    reviewed_build,
)
from services.validation.policy import PolicyTable
from services.validation.rules import ApprovalTable
from services.validation.settings import ValidationSettings
from shared import topics
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import AcceptedRecord, Decision, Review, State, ValidatedRecord
from shared.contracts.policies import PolicyChange
from shared.stage import Stage, Unusable


@dataclass
class Runtime:
    """What the handlers use, filled in by the app's lifespan."""

    table: ApprovalTable
    pending: PendingStore
    policies: PolicyTable


def register(stage: Stage[ValidationSettings], runtime: Runtime) -> None:
    emitter = stage.emitter

    async def apply(build: BuildRecord, reviewed_by: str | None = None) -> Outcome | None:
        """Decide, remember, and publish what was decided; None when a newer revision decides."""
        outcome = decide(build, runtime.table, runtime.policies.policy, dt.date.today(), reviewed_by)
        await publish(build, outcome, reviewed_by)
        return outcome

    async def publish(build: BuildRecord, outcome: Outcome, reviewed_by: str | None) -> Outcome | None:
        """Remember a decision and publish it; None when a newer revision decides."""
        if not await runtime.pending.save(build, outcome.state, outcome.state in WAITING, reviewed_by):
            return None
        if outcome.validated is not None:
            await emitter.send(
                topics.VALIDATED, outcome.validated, key=build.vin, correlation_id=build.record_id
            )
        await emitter.status(
            vin=build.vin,
            revision=build.revision,
            state=outcome.state,
            build=build,
            findings=outcome.findings,
        )
        return outcome

    async def on_accepted(record: AcceptedRecord) -> None:
        await apply(record.build)  # a superseded revision is dropped there

    async def on_review(review: Review) -> None:
        try:
            build = reviewed_build(await runtime.pending.get(review.vin), review)
        except NotWaiting as exc:
            raise Unusable(str(exc), state=None) from None
        if review.decision is Decision.ACCEPT:
            await apply(build, reviewed_by=review.reviewer)
            return
        finding = rejected_by_review(review.reviewer, review.comment)
        await runtime.pending.save(build, State.BLOCKED, True, review.reviewer)
        await emitter.status(
            vin=build.vin, revision=build.revision, state=State.BLOCKED, build=build, findings=(finding,)
        )

    async def on_approval(approval: Approval) -> None:
        if runtime.table.get(approval.key) == approval:
            return  # already known (read at start, or a repeat)
        runtime.table.add(approval)
        for build in await runtime.pending.waiting_on(approval.key):
            await apply(build)

    stage.publisher(topics.VALIDATED, ValidatedRecord)
    stage.consume(topics.ACCEPTED, AcceptedRecord, on_accepted)
    stage.consume(topics.REVIEWS, Review, on_review)
    # Every instance keeps the whole approval table: the topic is read whole by each.
    stage.consume(topics.APPROVALS, Approval, on_approval, broadcast=True, broken_state=None)
