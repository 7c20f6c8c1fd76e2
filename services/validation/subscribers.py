"""Validation's subscribers: accepted records, approvals, reviews and policy changes in; decisions out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

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
from shared.contracts.events import (
    AcceptedRecord,
    Decision,
    Review,
    Settlement,
    State,
    ValidatedRecord,
    now,
)
from shared.contracts.policies import PolicyChange
from shared.stage import Backoff, Stage, Unusable

T = TypeVar("T")


@dataclass
class Runtime:
    """What the handlers use, filled in by the app's lifespan."""

    table: ApprovalTable
    pending: PendingStore
    policies: PolicyTable


def register(stage: Stage[ValidationSettings], runtime: Runtime) -> None:
    emitter = stage.emitter
    backoff = Backoff(stage.settings.retry_initial_s, stage.settings.retry_max_s)

    async def apply(
        build: BuildRecord, reviewed_by: str | None = None, settlement: Settlement | None = None
    ) -> None:
        """Decide on a record with the current approvals and policies, and carry the decision out.

        A record decided without its approval, whose approval arrived while the
        decision was being saved, is decided again: the approval's re-check of
        the records waiting on it (``on_approval``) may have read the pending
        records just before this one was written.
        """
        known = runtime.table.get(build.approval.key) is not None
        policy = runtime.policies.policy
        outcome = decide(build, runtime.table, policy, dt.date.today(), reviewed_by, settlement)
        await carry_out(build, outcome, reviewed_by, settlement)
        if not known and runtime.table.get(build.approval.key) is not None:
            await apply(build, reviewed_by, settlement)

    async def carry_out(
        build: BuildRecord, outcome: Outcome, reviewed_by: str | None, settlement: Settlement | None = None
    ) -> None:
        """Remember a decision and publish it; nothing when a newer revision of the VIN is known."""
        approval = outcome.validated.approval if outcome.validated else runtime.table.get(build.approval.key)
        waiting = outcome.state in WAITING
        saved = await runtime.pending.save(build, outcome.state, waiting, reviewed_by, approval, settlement)
        if not saved:
            return
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
            reason=f"released by {reviewed_by}" if reviewed_by and outcome.validated else None,
        )

    async def on_accepted(record: AcceptedRecord) -> None:
        await apply(record.build)  # a superseded revision is dropped there

    async def on_review(review: Review) -> None:
        try:
            build = reviewed_build(await runtime.pending.get(review.vin), review)
        except NotWaiting as exc:
            raise Unusable(str(exc), state=None) from None
        if review.decision is Decision.ACCEPT:
            settlement = Settlement(reviewer=review.reviewer, comment=review.comment, at=now())
            await apply(build, reviewed_by=review.reviewer, settlement=settlement)
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

    async def on_policy(change: PolicyChange) -> None:
        if not runtime.policies.apply(change):
            return  # an older change read again, or one already carried out
        # Held and needs-review records of the group are decided again; blocked and released
        # ones keep their decision (decide.redecide).
        for waiting in await persist(partial(runtime.pending.waiting_in, change.vehicle_group)):
            outcome = redecide(waiting, runtime.table, runtime.policies.policy, dt.date.today())
            if outcome is not None:
                step = partial(carry_out, waiting.build, outcome, waiting.reviewed_by, waiting.settlement)
                await persist(step)

    async def persist(step: Callable[[], Awaitable[T]]) -> T:
        """Run ``step`` until it succeeds, waiting longer after each failure.

        The policies are read without a consumer group (every instance reads
        the whole topic), so a change whose handler raised would never be
        delivered again and its group's records would stay held: a transient
        fault (database or broker away) is waited out here instead.
        """
        while True:
            try:
                result = await step()
            except Exception:
                await backoff.failed()
            else:
                backoff.succeeded()
                return result

    stage.publisher(topics.VALIDATED, ValidatedRecord)
    stage.consume(topics.ACCEPTED, AcceptedRecord, on_accepted)
    stage.consume(topics.REVIEWS, Review, on_review)
    # Every instance keeps the whole approval table: the topic is read whole by each.
    stage.consume(topics.APPROVALS, Approval, on_approval, broadcast=True, broken_state=None)
    # Every instance keeps the whole policy table too; the topic is keyed by group, not by VIN.
    stage.consume(topics.POLICIES, PolicyChange, on_policy, broadcast=True, broken_state=None)
