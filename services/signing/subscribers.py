"""Signing's subscriber: rendered documents in, sealed documents out. The only holder of the key."""

from __future__ import annotations

import hashlib

from services.signing.adapters.keys import SealHolder
from services.signing.seal import SigningError
from services.signing.settings import SigningSettings
from shared import topics
from shared.contracts.events import Document, State
from shared.stage import Stage, Unusable
from shared.xml import XmlInputError


def register(stage: Stage[SigningSettings], holder: SealHolder) -> None:
    async def on_rendered(document: Document) -> None:
        seal = holder.get()
        try:
            signed = seal.sign(document.xml.encode("utf-8"))
        except (SigningError, XmlInputError) as exc:
            raise Unusable(
                f"cannot sign {document.record_id}: {exc}", vin=document.vin, revision=document.revision
            ) from None
        result = document.model_copy(
            update={
                "xml": signed.decode("utf-8"),
                "sha256": hashlib.sha256(signed).hexdigest(),
                "signer_fingerprint": seal.fingerprint,
            }
        )
        await stage.emitter.send(topics.SIGNED, result, key=document.vin, correlation_id=document.record_id)
        await stage.emitter.status(vin=document.vin, revision=document.revision, state=State.SIGNED)

    stage.publisher(
        topics.SIGNED, Document, "Sealed IVI 2.0 documents with their SHA-256 and the seal's fingerprint"
    )
    stage.consume(topics.RENDERED, Document, on_rendered)
