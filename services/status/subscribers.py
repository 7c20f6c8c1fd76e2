"""Status's subscriber: every status event in, folded into the read model; nothing out but DLQ entries."""

from __future__ import annotations

from faststream.kafka import KafkaMessage

from services.status.adapters.records import StatusStore
from shared import topics
from shared.contracts.events import StatusEvent
from shared.messaging import ContractError, parse_as, raw_body, subscriber_options
from shared.pipeline import Backoff, Emitter
from shared.service import Service


def register(service: Service, store: StatusStore) -> None:
    """Subscribe to coc.status.v1 with the delivery rules of ``shared.service.consume``, but one.

    ``consume`` answers a broken message with a ``failed`` status event on
    coc.status.v1; the status service must never emit status itself (it would
    read its own event back), so a broken status event only goes to the DLQ.
    """
    emitter = Emitter(service.broker, service.instance, service.stage)
    backoff = Backoff(service.settings.retry_initial_s, service.settings.retry_max_s)

    @service.broker.subscriber(
        topics.STATUS, decoder=raw_body, title="status:status", **subscriber_options("coc-status")
    )
    async def on_status(body: bytes, msg: KafkaMessage) -> None:
        """Fold the event into its VIN's document; a database fault is retried, uncommitted."""
        try:
            event = parse_as(StatusEvent, body)
        except ContractError as exc:
            await emitter.dead_letter(msg, str(exc))
            return
        try:
            await store.apply(event)
        except Exception:
            await backoff.failed()
            raise
        backoff.succeeded()
