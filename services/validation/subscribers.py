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
DECIDED_KEPT = 100_000  # decisions saved in bulk and not yet announced (then forgotten: they are saved)


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
        if saved:
            await announce(build, outcome, reviewed_by)

    async def announce(build: BuildRecord, outcome: Outcome, reviewed_by: str | None) -> None:
        """Publish a saved decision: the validated record, if any, and the status event."""
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
        outcome = decided.pop(record.build.record_id, None)
        if outcome is not None:
            await announce(record.build, outcome, None)  # decided and saved with its batch
            return
        await apply(record.build)  # a superseded revision is dropped there

    decided: dict[str, Outcome] = {}

    async def decide_firsts(firsts: list[tuple[AcceptedRecord, str | None]]) -> None:
        """Decide each new VIN's first record of a batch and save those decisions in one request.

        A VIN the store knows already is refused there and decided by ``apply``
        (its revision compared with the newest known); so is a record whose
        approval is not known yet (``apply`` decides it again if it arrives).
        """
        outcomes: dict[str, tuple[BuildRecord, Outcome, Approval]] = {}
        today, policy = dt.date.today(), runtime.policies.policy
        for build in (record.build for record, _trace in firsts):
            approval = runtime.table.get(build.approval.key)
            if approval is not None:
                outcomes[build.vin] = (build, decide(build, runtime.table, policy, today), approval)
        saved = await runtime.pending.save_new(
            [
                (build, outcome.state, outcome.state in WAITING, approval)
                for build, outcome, approval in outcomes.values()
            ]
        )
        if len(decided) > DECIDED_KEPT:
            decided.clear()
        decided.update(
            {build.record_id: outcome for vin, (build, outcome, _a) in outcomes.items() if vin in saved}
        )

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
    stage.consume(topics.ACCEPTED, AcceptedRecord, on_accepted, prepare=decide_firsts)
    stage.consume(topics.REVIEWS, Review, on_review)
    # Every instance keeps the whole approval table: the topic is read whole by each.
    stage.consume(topics.APPROVALS, Approval, on_approval, broadcast=True, broken_state=None)
    # Every instance keeps the whole policy table too; the topic is keyed by group, not by VIN.
    stage.consume(topics.POLICIES, PolicyChange, on_policy, broadcast=True, broken_state=None)
