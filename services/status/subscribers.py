"""Status's subscriber: every status event in, folded into the read model; nothing out but DLQ entries."""

from __future__ import annotations

from faststream.kafka import KafkaMessage

from services.status.adapters.records import StatusStore
from shared import topics
from shared.contracts.events import StatusEvent
from shared.service import Service, consume


def register(service: Service, store: StatusStore) -> None:
    """Fold each event into its VIN's document; a database fault is retried, uncommitted.

    A broken status event only goes to the DLQ: the status service never emits
    status itself (it would read its own event back).
    """

    async def on_status(event: StatusEvent, _msg: KafkaMessage) -> None:
        await store.apply(event)

    consume(service, topics.STATUS, StatusEvent, on_status, broken_state=None)
