"""Signing's subscribers: rendered documents in, sealed documents out; the seal registry, live.

The only holder of the keys. Each document is sealed with its approval holder's
seal (``services.signing.registry``); a document whose holder has no seal waits
(``SEAL_MISSING``, integration's) in ``signing_waiting`` and is sealed as soon
as a seal for its holder is registered, without a restart and without anyone
sending it again.

Every instance reads the registry whole; with two instances, only the one whose
consumer holds a document's partition of coc.documents.rendered.v1 (keyed by
VIN) seals it when its holder's seal comes (``HeldPartitions``), so each is
sealed and published once. Partitions that come to an instance are handed over
once the registry is read to its end: their waiting documents whose holder has a
seal now are sealed then (``Sealing.take_over``), so a seal registered while
nobody held a partition is not lost.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

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
from shared.stage import Backoff, HeldPartitions, Stage, Unusable
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
    # The partitions of coc.documents.rendered.v1 this instance holds: the waiting documents it seals (None: all).
    held: HeldPartitions | None = None
    # A hand-over's steps retried in place (``register`` gives the settings'; these are their defaults).
    backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 15.0))
    # One release or hand-over at a time: each reads the collection after the one before has sealed.
    releasing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

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
        """Seal the documents waiting for ``key``'s seal on the partitions this instance holds.

        One read of the holder's waiting documents, filtered here: those on
        another instance's partitions are that one's to seal (``mine``).
        """
        async with self.releasing:
            for document in await self.waiting.of_holder(key):
                if self.mine(document.vin):
                    await self.release_one(document)
            self.waiting.holders.discard(key)

    async def release_one(self, document: Document) -> None:
        """Seal and send a waiting document if its holder has a seal now; it then waits no more."""
        seal = self.book.choose(document.seal_holder)
        if isinstance(seal, Missing):
            return
        try:
            await self.seal_and_send(document, seal)
        except Unusable as exc:
            await self.stage.emitter.status(
                vin=document.vin, revision=document.revision, state=State.FAILED, reason=str(exc)
            )
        await self.waiting.done(document)

    def mine(self, vin: str) -> bool:
        """Whether this instance seals the VIN's waiting document when its holder's seal comes.

        The one holding the VIN's partition of coc.documents.rendered.v1 now (every
        VIN without ``held``, as one instance): of two instances, one seals it.
        """
        return self.held is None or self.held.holds(vin)

    async def take_over(self, partitions: frozenset[int]) -> None:
        """Partitions of coc.documents.rendered.v1 newly held: their waiting documents sealed if their holder can be.

        Called once the registry is read to its end (``HeldPartitions``): a seal
        registered while no instance held a partition, or before this one
        started, seals that partition's documents now. One read of every waiting
        document, filtered here (on FerretDB any filter but ``_id`` reads the
        collection whole); a document whose holder has no seal yet keeps
        waiting, saying nothing again. Retried in place: the assignment is not
        made again.
        """
        held = self.held
        async with self.releasing:
            for document in await self.backoff.retry(self.waiting.every):
                if held is None or held.among(document.vin, partitions):
                    await self.backoff.retry(partial(self.release_one, document))

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
    held: HeldPartitions | None = None,
) -> Callable[[], Awaitable[None]]:
    """Subscribe signing; returns the start hook that reads the registry before the first document.

    ``held``: the partitions of coc.documents.rendered.v1 this instance holds, whose
    waiting documents it seals when a seal comes, and to which partitions newly
    held are handed over (None: every document, as one instance).
    """
    backoff = Backoff(stage.settings.retry_initial_s, stage.settings.retry_max_s)
    sealing = Sealing(stage, holder, book, waiting, opener, held=held, backoff=backoff)
    if held is not None:
        held.on_assigned.append(sealing.take_over)
    stage.publisher(
        topics.SIGNED, Document, "Sealed IVI 2.0 documents with their SHA-256 and the seal's fingerprint"
    )
    stage.consume(topics.RENDERED, Document, sealing.on_rendered, held=held)
    stage.consume(
        topics.SEALS,
        SealRegistration,
        sealing.on_seal,
        broadcast=True,
        broken_state=None,
        settle=sealing.release_due,
    )
    return sealing.read_registry
