"""Archive's subscriber: another document for an archived record id gets no receipt and no `archived`."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from services.archive import subscribers
from services.archive.adapters.store import OtherCertificate
from shared import topics
from shared.contracts.events import ArchiveReceipt, Document, State, now
from shared.stage import Unusable

pytestmark = pytest.mark.unit

XML = "<IVI><VIN>WVWZZZ1JZXW000001</VIN></IVI>"
DOCUMENT = Document(
    record_id="WVWZZZ1JZXW000001:1",
    vin="WVWZZZ1JZXW000001",
    revision=1,
    version_number=1,
    xml=XML,
    sha256=hashlib.sha256(XML.encode()).hexdigest(),
    signer_fingerprint="ab" * 32,
)


class Emitter:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def send(self, topic: str, model: Any, *, key: str, correlation_id: str) -> None:
        self.sent.append((topic, model))

    async def status(self, **event: Any) -> None:
        self.sent.append(("status", event))


class Stage:
    """What ``register`` uses of a stage: publishers, one subscription, the emitter."""

    def __init__(self) -> None:
        self.emitter = Emitter()
        self.handler: Any = None

    def publisher(self, *_args: Any) -> None:
        pass

    def consume(self, _topic: str, _model: type, handler: Any, **_options: Any) -> None:
        self.handler = handler


class Store:
    def __init__(self, kept: ArchiveReceipt | None) -> None:
        self.kept = kept

    async def store(self, document: Document, trace_id: str | None = None) -> ArchiveReceipt:
        if self.kept is None:
            raise OtherCertificate(document, "cd" * 32)
        return self.kept

    async def store_firsts(self, firsts: list[tuple[Document, str | None]]) -> int:
        return 0


async def test_another_document_for_an_archived_record_id_is_unusable_and_nothing_says_archived() -> None:
    stage = Stage()
    subscribers.register(stage, Store(None))  # type: ignore[arg-type]  # the parts register uses

    with pytest.raises(Unusable) as raised:
        await stage.handler(DOCUMENT)

    assert (raised.value.vin, raised.value.revision, raised.value.state) == (DOCUMENT.vin, 1, State.FAILED)
    assert f"archived already as SHA-256 {'cd' * 32}" in raised.value.reason
    assert DOCUMENT.sha256 in raised.value.reason
    assert stage.emitter.sent == []  # no receipt, no `archived`


async def test_the_kept_document_again_is_answered_with_the_kept_receipt_and_archived() -> None:
    receipt = ArchiveReceipt(
        record_id=DOCUMENT.record_id,
        vin=DOCUMENT.vin,
        revision=1,
        sha256=DOCUMENT.sha256,
        signer_fingerprint="ab" * 32,
        archived_at=now(),
    )
    stage = Stage()
    subscribers.register(stage, Store(receipt))  # type: ignore[arg-type]

    await stage.handler(DOCUMENT)

    assert [topic for topic, _ in stage.emitter.sent] == [topics.ARCHIVED, "status"]
    assert stage.emitter.sent[0][1] == receipt and stage.emitter.sent[1][1]["state"] is State.ARCHIVED
