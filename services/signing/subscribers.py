"""Signing's subscribers: rendered documents in, sealed documents out; the seal registry, live.

The only holder of the keys. Each document is sealed with its approval holder's
seal (``services.signing.registry``); a document whose holder has no seal waits
(``SEAL_MISSING``, integration's) in ``signing_waiting`` and is sealed as soon
as a seal for its holder is registered, without a restart and without anyone
sending it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.signing.adapters.keys import SealHolder
from services.signing.adapters.waiting import WaitingDocuments
from services.signing.registry import Missing, Opener, SealBook
from services.signing.seal import Seal, SigningError
from services.signing.settings import SigningSettings
from shared import topics
from shared.contracts import Finding, Owner, Severity
from shared.contracts.events import Document, State
from shared.contracts.seals import SealRegistration, holder_key
from shared.kafka import read_contracts
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


@dataclass
class Sealing:
    """Seals each rendered document with its holder's seal, or keeps it until the holder has one."""

    stage: Stage[SigningSettings]
    holder: SealHolder
    book: SealBook
    waiting: WaitingDocuments
    opener: Opener
    due: set[str] = field(default_factory=set)  # holders whose seal changed, their waiting not yet sealed

    async def seal_and_send(self, document: Document, seal: Seal) -> None:
        try:
            signed = await self.holder.sign(seal, document.xml.encode("utf-8"))
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
        emitter = self.stage.emitter
        await emitter.send(topics.SIGNED, result, key=document.vin, correlation_id=document.record_id)
        await emitter.status(
            vin=document.vin, revision=document.revision, state=State.SIGNED, findings=expiry_warning(seal)
        )

    async def on_rendered(self, document: Document) -> None:
        choice = self.book.choose(document.seal_holder)
        if isinstance(choice, Missing):
            await self.wait_for_seal(document, choice)
            return
        await self.seal_and_send(document, choice)
        if document.seal_holder and holder_key(document.seal_holder) in self.waiting.holders:
            await self.waiting.done(document)  # an older revision may have waited

    async def wait_for_seal(self, document: Document, missing: Missing) -> None:
        await self.waiting.keep(document, missing.holder or "")
        again = self.book.choose(document.seal_holder)
        if isinstance(again, Seal):  # registered while the document was being kept
            await self.seal_and_send(document, again)
            await self.waiting.done(document)
            return
        await self.stage.emitter.status(
            vin=document.vin,
            revision=document.revision,
            state=State.BLOCKED,
            build=document.evidence.build if document.evidence else None,
            findings=(missing.finding(),),
        )

    async def on_seal(self, registration: SealRegistration) -> None:
        if self.book.take(registration, self.opener):
            self.due.add(registration.holder)

    async def release_due(self) -> None:
        """Seal the documents waiting for every holder whose seal came (after each batch of the registry).

        The collection is asked, not this instance's view of it: another instance may have kept them.
        """
        for key in sorted(self.due):
            if self.book.sealable(key):
                await self.release(key)
            self.due.discard(key)

    async def release(self, key: str) -> None:
        for document in await self.waiting.of_holder(key):
            seal = self.book.choose(document.seal_holder)
            if isinstance(seal, Missing):
                continue
            try:
                await self.seal_and_send(document, seal)
            except Unusable as exc:
                await self.stage.emitter.status(
                    vin=document.vin, revision=document.revision, state=State.FAILED, reason=str(exc)
                )
            await self.waiting.done(document)
        self.waiting.holders.discard(key)

    async def read_registry(self) -> None:
        """The registry as the topic holds it now, before the first document; then the subscriber follows."""
        await self.waiting.setup()
        for registration, _record in await read_contracts(
            self.stage.settings, topics.SEALS, SealRegistration
        ):
            await self.on_seal(registration)


def register(
    stage: Stage[SigningSettings],
    holder: SealHolder,
    book: SealBook,
    waiting: WaitingDocuments,
    opener: Opener,
) -> Callable[[], Awaitable[None]]:
    """Subscribe signing; returns the start hook that reads the registry before the first document."""
    sealing = Sealing(stage, holder, book, waiting, opener)
    stage.publisher(
        topics.SIGNED, Document, "Sealed IVI 2.0 documents with their SHA-256 and the seal's fingerprint"
    )
    stage.consume(topics.RENDERED, Document, sealing.on_rendered)
    stage.consume(
        topics.SEALS,
        SealRegistration,
        sealing.on_seal,
        broadcast=True,
        broken_state=None,
        settle=sealing.release_due,
    )
    return sealing.read_registry
