"""Validation's subscribers: accepted records, approvals and reviews in; decisions out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from faststream import AckPolicy
from faststream.kafka import KafkaMessage

from services.validation.adapters.pending import PendingStore
from services.validation.handlers import WAITING, Outcome, decide, rejected_by_review
from services.validation.rules import ApprovalTable
from services.validation.settings import RuleSettings
from shared import topics
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import AcceptedRecord, Decision, Review, State
from shared.messaging import ContractError, parse_as, raw_body
from shared.pipeline import Emitter
from shared.service import Service, consume


@dataclass
class Runtime:
    """What the handlers use, filled in by the app's lifespan."""

    table: ApprovalTable
    pending: PendingStore


def register(service: Service, runtime: Runtime) -> None:
    settings = service.settings
    assert isinstance(settings, RuleSettings)
    emitter = Emitter(service.broker, service.instance, service.stage)

    async def apply(build: BuildRecord, reviewed_by: str | None = None) -> Outcome | None:
        """Decide, remember, and publish what was decided; None when a newer revision decides."""
        outcome = decide(build, runtime.table, settings, dt.date.today(), reviewed_by)
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

    async def on_accepted(record: AcceptedRecord, _msg: KafkaMessage) -> None:
        await apply(record.build)  # a superseded revision is dropped there

    async def on_review(review: Review, msg: KafkaMessage) -> None:
        doc = await runtime.pending.get(review.vin)
        if doc is None or doc["revision"] != review.revision or doc["state"] not in WAITING:
            await emitter.dead_letter(
                msg, f"no record {review.vin}:{review.revision} is waiting for a review"
            )
            return
        build = BuildRecord.model_validate(doc["build"])
        if review.decision is Decision.ACCEPT:
            await apply(build, reviewed_by=review.reviewer)
            return
        finding = rejected_by_review(review.reviewer, review.comment)
        await runtime.pending.save(build, State.BLOCKED, True, review.reviewer)
        await emitter.status(
            vin=build.vin, revision=build.revision, state=State.BLOCKED, build=build, findings=(finding,)
        )

    consume(service, topics.ACCEPTED, AcceptedRecord, on_accepted)
    consume(service, topics.REVIEWS, Review, on_review)

    # Every instance keeps the whole approval table: no consumer group, from the beginning.
    @service.broker.subscriber(
        topics.APPROVALS,
        decoder=raw_body,
        group_id=None,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        title="validation:approvals",
    )
    async def on_approval(body: bytes, msg: KafkaMessage) -> None:
        try:
            approval = parse_as(Approval, body)
        except ContractError as exc:
            await emitter.dead_letter(msg, str(exc))
            return
        if runtime.table.get(approval.key) == approval:
            return  # already known (read at start, or a repeat)
        runtime.table.add(approval)
        for build in await runtime.pending.waiting_on(approval.key):
            await apply(build)
