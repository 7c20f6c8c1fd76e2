"""Intake's Kafka entry: build records an MES publishes straight to coc.builds.v1."""

from __future__ import annotations

from faststream.kafka import KafkaMessage

from services.intake.handlers import accept, readable_identity
from shared import topics
from shared.contracts import BuildRecord
from shared.contracts.events import AcceptedRecord, State, now
from shared.messaging import ContractError, parse_as, raw_body, subscriber_options
from shared.pipeline import Backoff, Emitter, record_of
from shared.service import Service


def register(service: Service) -> None:
    emitter = Emitter(service.broker, service.instance, service.stage)
    backoff = Backoff(service.settings.retry_initial_s, service.settings.retry_max_s)

    @service.broker.subscriber(
        topics.BUILDS,
        decoder=raw_body,
        title="intake:builds",
        **subscriber_options("coc-intake", service.settings.consumers),
    )
    async def on_build(body: bytes, msg: KafkaMessage) -> None:
        """A build the MES published: accepted, or kept in the DLQ with a `rejected` status."""
        try:
            build = parse_as(BuildRecord, body)
        except ContractError as exc:
            await reject_build(emitter, msg, body, str(exc))
            return
        try:
            await forward(emitter, accept(build, now()))
        except Exception:
            await backoff.failed()
            raise
        backoff.succeeded()


async def forward(emitter: Emitter, record: AcceptedRecord) -> None:
    """Publish an accepted record and say it was received."""
    build = record.build
    await emitter.send(topics.ACCEPTED, record, key=build.vin, correlation_id=record.record_id)
    await emitter.status(vin=build.vin, revision=build.revision, state=State.RECEIVED, build=build)


async def reject_build(emitter: Emitter, msg: KafkaMessage, body: bytes, reason: str) -> None:
    await emitter.dead_letter(msg, reason)
    vin, revision = readable_identity(body)
    key = record_of(msg).key
    if not vin and key:
        vin = key.decode("utf-8", "replace").strip().upper()
    if vin:
        await emitter.status(vin=vin, revision=revision, state=State.REJECTED, reason=reason)
