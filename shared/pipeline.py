"""What every stage does besides its own work: say where a record stands, keep what it cannot use.

``Emitter`` publishes status events to coc.status.v1 (key = VIN, correlation id
= record id, trace id of the record) and dead letters to ``<topic>.dlq``. The
pure logic of a stage returns what happened; the subscriber hands it here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel

from shared import topics
from shared.contracts import Finding, Owner
from shared.contracts.builds import BuildRecord
from shared.contracts.events import DeadLetter, State, StatusEvent, now
from shared.messaging import publish
from shared.telemetry import current_trace_id


@dataclass(frozen=True)
class Emitter:
    broker: KafkaBroker
    service: str  # e.g. "signing@host:pid"
    stage: str  # e.g. "signing"

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        """Publish a contract onward with the envelope conventions, as this stage."""
        await publish(
            self.broker, model, topic=topic, key=key, correlation_id=correlation_id, service=self.stage
        )

    async def status(
        self,
        *,
        vin: str,
        revision: int,
        state: State,
        build: BuildRecord | None = None,
        findings: Iterable[Finding] = (),
        reason: str | None = None,
    ) -> StatusEvent:
        found = tuple(findings)
        event = StatusEvent(
            vin=vin,
            record_id=f"{vin}:{revision}",
            revision=revision,
            build_id=build.build_id if build else None,
            vehicle_group=build.vehicle_group if build else None,
            stage=self.stage,
            state=state,
            findings=found,
            owner=owner_of(found),
            reason=reason,
            time=now(),
            service=self.service,
            trace_id=current_trace_id(),
        )
        await publish(
            self.broker,
            event,
            topic=topics.STATUS,
            key=vin,
            correlation_id=event.record_id,
            service=self.stage,
        )
        return event

    async def dead_letter(self, msg: KafkaMessage, reason: str) -> DeadLetter:
        return await self.dead_letter_record(record_of(msg), reason, msg.correlation_id)

    async def dead_letter_record(
        self, record: ConsumerRecord[bytes, bytes], reason: str, correlation_id: str | None = None
    ) -> DeadLetter:
        """Keep one consumed record in ``<topic>.dlq`` with the reason."""
        key = record.key.decode("utf-8", "replace") if record.key else None
        letter = DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            value=(record.value or b"").decode("utf-8", "replace"),
            reason=reason,
            service=self.service,
            time=now(),
        )
        await publish(
            self.broker,
            letter,
            topic=topics.dlq(record.topic),
            key=key or "",
            correlation_id=correlation_id or f"{record.topic}:{record.partition}:{record.offset}",
            service=self.stage,
        )
        return letter


def record_of(msg: KafkaMessage) -> ConsumerRecord[bytes, bytes]:
    """The Kafka record of a single (not batch) message."""
    raw = msg.raw_message
    return raw[0] if isinstance(raw, tuple) else raw


def owner_of(findings: tuple[Finding, ...]) -> Owner | None:
    """The team that must act first: the owner of the first error, else of the first finding."""
    for finding in findings:
        if finding.severity == "error":
            return finding.owner
    return findings[0].owner if findings else None


class Backoff:
    """Waits longer after each consecutive failure; a success resets it.

    A handler whose transient fault (broker or database away) propagates has its
    message delivered again at once (the offset is not committed); waiting here
    first keeps that redelivery from spinning while the fault lasts.
    """

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0

    def succeeded(self) -> None:
        self.failures = 0

    async def failed(self) -> None:
        delay = min(self.max_s, self.initial_s * (2**self.failures))
        self.failures += 1
        await asyncio.sleep(delay)
