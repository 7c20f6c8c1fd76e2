"""Signing's subscriber: rendered documents in, sealed documents out. The only holder of the key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from faststream.kafka import KafkaMessage

from services.signing.seal import Seal, SigningError
from shared import topics
from shared.contracts.events import Document, State
from shared.pipeline import Emitter
from shared.service import Service, consume
from shared.xml import XmlInputError


@dataclass
class SealHolder:
    """The seal, set by the lifespan before the first message is consumed."""

    seal: Seal | None = None


def register(service: Service, holder: SealHolder) -> None:
    emitter = Emitter(service.broker, service.instance, service.stage)

    async def on_rendered(document: Document, msg: KafkaMessage) -> None:
        seal = holder.seal
        assert seal is not None, "the lifespan loads the seal before consuming"
        try:
            signed = seal.sign(document.xml.encode("utf-8"))
        except (SigningError, XmlInputError) as exc:
            await emitter.dead_letter(msg, f"cannot sign {document.record_id}: {exc}")
            await emitter.status(
                vin=document.vin, revision=document.revision, state=State.FAILED, reason=str(exc)
            )
            return
        result = document.model_copy(
            update={
                "xml": signed.decode("utf-8"),
                "sha256": hashlib.sha256(signed).hexdigest(),
                "signer_fingerprint": seal.fingerprint,
            }
        )
        await emitter.send(topics.SIGNED, result, key=document.vin, correlation_id=document.record_id)
        await emitter.status(vin=document.vin, revision=document.revision, state=State.SIGNED)

    consume(service, topics.RENDERED, Document, on_rendered)
