"""Status's subscriber: status events in batches, folded into the read model; nothing out but DLQ entries."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaMessage
from faststream.message import StreamMessage

from services.status.adapters.records import StatusStore
from shared import topics
from shared.contracts.events import StatusEvent
from shared.messaging import ContractError, parse_as, subscriber_options
from shared.pipeline import Backoff, Emitter
from shared.service import Service

BATCH = 500  # events folded together: one read and at most one write per VIN per batch


async def raw_batch(msg: StreamMessage[Any]) -> list[bytes]:
    return [record.value or b"" for record in msg.raw_message]


def register(service: Service, store: StatusStore) -> None:
    """Fold events a batch at a time; a database fault is retried, the batch uncommitted.

    Every status event of a record passes here (about six per vehicle), so the
    events are read in batches and each VIN is read and written once per
    batch. A broken event only goes to the DLQ: the status service never emits
    status itself (it would read its own event back).
    """
    emitter = Emitter(service.broker, service.instance, service.stage)
    backoff = Backoff(service.settings.retry_initial_s, service.settings.retry_max_s)

    @service.broker.subscriber(
        topics.STATUS,
        batch=True,
        max_records=BATCH,
        batch_timeout_ms=200,
        decoder=raw_batch,
        title="status:status",
        **subscriber_options(f"coc-status.{topics.STATUS}"),
    )
    async def on_status(bodies: list[bytes], msg: KafkaMessage) -> None:
        events = []
        for record in msg.raw_message:
            try:
                events.append(parse_as(StatusEvent, record.value or b""))
            except ContractError as exc:
                await emitter.dead_letter_record(record, str(exc))
        try:
            await store.apply_many(events)
        except Exception:
            await backoff.failed()
            raise
        backoff.succeeded()
