"""Archive's subscriber: signed documents in, stored once, receipts and `archived` out."""

from __future__ import annotations

from services.archive.adapters.store import CertificateStore, OtherCertificate
from services.archive.settings import ArchiveSettings
from shared import topics
from shared.contracts.events import ArchiveReceipt, Document, State
from shared.stage import Stage, Unusable
from shared.telemetry import current_trace_id


def register(stage: Stage[ArchiveSettings], store: CertificateStore) -> None:
    async def on_signed(document: Document) -> None:
        try:
            receipt = await store.store(document, current_trace_id())
        except OtherCertificate as exc:  # kept in the DLQ, the record failed with the reason
            raise Unusable(str(exc), vin=document.vin, revision=document.revision) from None
        await stage.emitter.send(
            topics.ARCHIVED, receipt, key=document.vin, correlation_id=document.record_id
        )
        await stage.emitter.status(vin=document.vin, revision=document.revision, state=State.ARCHIVED)

    stage.publisher(topics.ARCHIVED, ArchiveReceipt)
    stage.consume(topics.SIGNED, Document, on_signed, prepare=store.store_firsts)
