"""Archive's subscriber: signed documents in, stored once, receipts and `archived` out."""

from __future__ import annotations

from faststream.kafka import KafkaMessage

from services.archive.adapters.store import CertificateStore
from shared import topics
from shared.contracts.events import Document, State
from shared.pipeline import Emitter
from shared.service import Service, consume


def register(service: Service, store: CertificateStore) -> None:
    emitter = Emitter(service.broker, service.instance, service.stage)

    async def on_signed(document: Document, _msg: KafkaMessage) -> None:
        receipt = await store.store(document)
        await emitter.send(topics.ARCHIVED, receipt, key=document.vin, correlation_id=document.record_id)
        await emitter.status(vin=document.vin, revision=document.revision, state=State.ARCHIVED)

    consume(service, topics.SIGNED, Document, on_signed)
