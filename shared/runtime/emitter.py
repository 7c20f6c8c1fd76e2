"""What a stage publishes: contracts onward, status events, dead letters, with the envelope conventions.

The emitter sends through the stage's own aiokafka producer (``Outbound``), the
records FastStream's declared publisher would make (the contract's JSON, the
headers ``content-type`` and ``correlation_id``, then the envelope's and the
trace's), without FastStream's layers around each send: 7 µs of its 20 per
message, eleven messages per certificate. Only topics the stage declared
(``Stage.publisher``) can be sent to, so the AsyncAPI document lists what runs.

Acknowledgements. ``send`` returns once the broker acknowledged the record,
except inside ``Emitter.confirming()``: there a send returns once queued, and
the block's ``Sends.confirmed()`` waits for all of them together. A consume mode
opens that block around a batch and commits only after ``confirmed()``
(``shared.runtime.batches``), so a batch's sends travel in a few requests
instead of one round trip each, and a lost send still rewinds the batch.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import trace
from pydantic import BaseModel
from pydantic_core import to_json

from shared import topics
from shared.contracts import Finding, Owner
from shared.contracts.approvals import RecordType
from shared.contracts.builds import BuildRecord
from shared.contracts.events import DeadLetter, State, StatusEvent, now
from shared.kafka import Record, envelope_headers
from shared.telemetry import Tracing, current_trace_id

# A dead letter keeps this much of the value exactly (base64 makes it 4/3 larger), so it fits the
# broker's default message limit of 1 MB; the readable excerpt beside it is shorter.
DLQ_KEPT_BYTES = 600_000
DLQ_TEXT_BYTES = 2_000
KEY_TEXT_MAX = 200
REASON_MAX = 2_000


class Outbound(Protocol):
    """What the emitter sends through: aiokafka's producer, or a test's recorder.

    ``send`` returns once the record is queued, with what resolves when the broker acknowledged it.
    """

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> Awaitable[Any]: ...


@dataclass
class Sends:
    """The acknowledgements of the sends made inside one ``Emitter.confirming()`` block."""

    pending: list[Awaitable[Any]] = field(default_factory=list)

    async def confirmed(self) -> None:
        """Wait for every acknowledgement; raise the first failure (the batch is then redone)."""
        outcomes = await asyncio.gather(*self.pending, return_exceptions=True)
        self.pending.clear()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


# The block a send belongs to (``Emitter.confirming``); unset: a send waits for its own acknowledgement.
_block: ContextVar[Sends | None] = ContextVar("coc_sends", default=None)


@dataclass
class Emitter:
    """Publishes what a stage decided, with the envelope conventions (module docstring).

    Status events go to coc.status.v1 (key = VIN, correlation id = record id,
    trace id of the record), dead letters to ``<topic>.dlq``. The pure logic
    of a stage returns what happened; the subscriber hands it here.
    """

    service: str  # the stage's name, in the envelope
    instance: str  # the process that emits, in status events and dead letters
    tracing: Tracing
    declared: Callable[[str], object]  # raises LookupError for a topic the stage did not declare
    outbound: Outbound | None = None  # set when the stage starts

    @staticmethod
    @contextlib.contextmanager
    def confirming() -> Iterator[Sends]:
        """A block whose sends return once queued; its ``Sends.confirmed()`` awaits them together."""
        sends = Sends()
        token = _block.set(sends)
        try:
            yield sends
        finally:
            _block.reset(token)

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        """Publish a contract onward as this stage, in the current record's trace or a new one."""
        if trace.get_current_span().get_span_context().is_valid:
            await self._publish(topic, model, key=key, correlation_id=correlation_id)
            return
        # Sent outside any record's trace (an HTTP client's approval, a test): it starts its own.
        with self.tracing.producer_span(f"{topic} publish"):
            await self._publish(topic, model, key=key, correlation_id=correlation_id)

    async def _publish(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        self.declared(topic)
        if self.outbound is None:
            raise RuntimeError("the stage is not started: nothing can be published yet")
        headers = envelope_headers(model, service=self.service)
        self.tracing.inject(headers)  # the trace rides on in the headers: the next stage continues it
        acknowledged = await self.outbound.send(
            topic,
            value=to_json(model),
            key=key.encode(),
            headers=[
                ("content-type", b"application/json"),
                ("correlation_id", correlation_id.encode()),
                *((name, value.encode()) for name, value in headers.items()),
            ],
        )
        block = _block.get()
        if block is None:
            await acknowledged
        else:
            block.pending.append(acknowledged)

    async def status(
        self,
        *,
        vin: str,
        revision: int,
        state: State,
        build: BuildRecord | None = None,
        findings: Iterable[Finding] = (),
        reason: str | None = None,
        owner: Owner | None = None,
        destination: str | None = None,
        record_type: RecordType | None = None,
    ) -> StatusEvent:
        found = tuple(findings)
        event = StatusEvent(
            vin=vin,
            record_id=f"{vin}:{revision}",
            revision=revision,
            build_id=build.build_id if build else None,
            vehicle_group=build.vehicle_group if build else None,
            stage=self.service,
            state=state,
            findings=found,
            owner=owner or owner_of(found),
            reason=reason,
            time=now(),
            service=self.instance,
            trace_id=current_trace_id(),
            destination=destination,
            record_type=record_type,
            country=build.intended_country if build else None,
        )
        await self.send(topics.STATUS, event, key=vin, correlation_id=event.record_id)
        return event

    async def dead_letter(self, record: Record, reason: str) -> DeadLetter:
        """Keep one consumed record in ``<topic>.dlq`` with the reason and its bytes exactly.

        The value is kept whole as base64 up to ``DLQ_KEPT_BYTES`` (so the letter
        fits the broker's message limit); a larger one keeps its first bytes, with
        the size and SHA-256 of the whole. A readable excerpt goes beside it.
        """
        key = record.key.decode("utf-8", "replace")[:KEY_TEXT_MAX] if record.key else None
        raw = record.value or b""
        kept = raw[:DLQ_KEPT_BYTES]
        letter = DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            value=raw[:DLQ_TEXT_BYTES].decode("utf-8", "replace"),
            value_b64=base64.b64encode(kept).decode(),
            value_size=len(raw),
            value_kept=len(kept),
            value_cut=len(kept) < len(raw),
            value_sha256=hashlib.sha256(raw).hexdigest(),
            reason=reason[:REASON_MAX],
            service=self.instance,
            time=now(),
        )
        await self.send(
            topics.dlq(record.topic),
            letter,
            key=key or "",
            correlation_id=f"{record.topic}:{record.partition}:{record.offset}",
        )
        return letter


def owner_of(findings: Sequence[Finding]) -> Owner | None:
    """The team that must act first: the owner of the first error, else of the first finding."""
    for finding in findings:
        if finding.severity == "error":
            return finding.owner
    return findings[0].owner if findings else None
