"""Signing's subscriber: rendered documents in, sealed documents out. The only holder of the key."""

from __future__ import annotations

import hashlib

from services.signing.adapters.keys import SealHolder
from services.signing.seal import Seal, SigningError
from services.signing.settings import SigningSettings
from shared import topics
from shared.contracts import Finding, Owner, Severity
from shared.contracts.events import Document, State
from shared.stage import Stage, Unusable
from shared.xml import XmlInputError

EXPIRY_WARNING_DAYS = 30


def expiry_warning(seal: Seal) -> tuple[Finding, ...]:
    """A warning for integration on every sealed record once the seal certificate expires within 30 days."""
    end = seal.expires_within(EXPIRY_WARNING_DAYS)
    if end is None:
        return ()
    return (
        Finding(
            code="SEAL_CERT_EXPIRING",
            path="Signature/KeyInfo/X509Data/X509Certificate",
            message=f"the seal certificate expires on {end:%Y-%m-%d}; integration must renew it",
            severity=Severity.WARNING,
            owner=Owner.INTEGRATION,
        ),
    )


def register(stage: Stage[SigningSettings], holder: SealHolder) -> None:
    async def on_rendered(document: Document) -> None:
        seal = holder.get()
        try:
            signed = await holder.sign(seal, document.xml.encode("utf-8"))
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
        await stage.emitter.status(
            vin=document.vin, revision=document.revision, state=State.SIGNED, findings=expiry_warning(seal)
        )

    stage.publisher(
        topics.SIGNED, Document, "Sealed IVI 2.0 documents with their SHA-256 and the seal's fingerprint"
    )
    stage.consume(topics.RENDERED, Document, on_rendered)
