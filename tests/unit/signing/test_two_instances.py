"""Two signing instances over one waiting collection: each waiting document sealed once when its seal comes.

Each instance reads the seal registry whole; only the one holding a VIN's
partition of coc.documents.rendered.v1 (``HeldPartitions``) seals its waiting
document. Partitions that come to an instance are handed over: their waiting
documents whose holder has a seal then are sealed. The collection here lets
both instances read the waiting documents before either marks one done, as two
processes reading one collection at the same moment do.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from aiokafka import AIOKafkaConsumer

from services.signing.adapters.keys import SealHolder, registered_opener
from services.signing.adapters.waiting import WaitingDocuments
from services.signing.registry import SealBook
from services.signing.settings import SigningSettings
from services.signing.subscribers import Sealing
from shared import topics
from shared.contracts.events import Document, State, StatusEvent
from shared.contracts.seals import SealRegistration
from shared.runtime.partitions import HeldPartitions, partition_of
from shared.stage import Backoff, Stage
from tests.unit.shared.runtime_fakes import Recording, TopicMetadata, holding
from tests.unit.signing.test_seal_registry import KAROO, MOPANI, FakeWaiting, document, sealed

pytestmark = pytest.mark.unit
PARTITIONS = 6
LOWER, UPPER = frozenset(range(3)), frozenset(range(3, PARTITIONS))
NAMIB = "NAMIB TRUCKS (PTY) LTD"  # a holder that never gets a seal here


@dataclass
class AtOnce(FakeWaiting):
    """Reads of the waiting documents let the other instance read too before any is marked done."""

    reads: int = 0  # reads of every waiting document (hand-overs)

    async def of_holder(self, holder: str) -> list[Document]:
        found = await super().of_holder(holder)
        await asyncio.sleep(0)
        return found

    async def every(self) -> list[Document]:
        self.reads += 1
        found = [doc for _holder, doc in self.kept.values()]
        await asyncio.sleep(0)
        return found


@dataclass
class Instance:
    sealing: Sealing
    sent: Recording
    held: HeldPartitions

    def signed(self) -> list[str]:
        return [d.vin for d in self.sent.models(topics.SIGNED, Document)]

    async def registered(self, registration: SealRegistration) -> None:
        """The registry's row read by this instance, then the batch settled (as its table reader does)."""
        await self.sealing.on_seal(registration)
        await self.sealing.release_due()


def instance(tmp_path: Path, store: AtOnce) -> Instance:
    """A signing instance with KAROO's seal as its settings' seal, over the shared ``store``."""
    _, karoo_seal = sealed(tmp_path, KAROO, "karoo")
    stage = Stage("signing", SigningSettings())
    stage.publisher(topics.SIGNED, Document)
    sent = Recording()
    stage.emitter.outbound = sent
    held = HeldPartitions(topics.RENDERED)
    held.consumer = cast(AIOKafkaConsumer, TopicMetadata(topics.RENDERED, PARTITIONS))
    sealing = Sealing(
        stage,
        SealHolder(seal=karoo_seal),
        SealBook(default=karoo_seal, default_holder=KAROO),  # each instance its own registry
        cast(WaitingDocuments, store),
        registered_opener(stage.settings),
        held=held,
        backoff=Backoff(0, 0),
    )
    held.on_assigned.append(sealing.take_over)
    return Instance(sealing, sent, held)


def waiting_store(unsigned: bytes, holder: str, numbers: Iterable[int]) -> AtOnce:
    """Documents of ``holder`` waiting for its seal, their VINs on both halves of the partitions."""
    store = AtOnce()
    for n in numbers:
        kept = document(unsigned, f"MOPANI{n:011d}", holder)
        store.kept[kept.vin] = (holder, kept)
        store.holders.add(holder)
    halves = {partition_of(vin, PARTITIONS) in LOWER for vin in store.kept}
    assert halves == {True, False}
    return store


def on(vins: Iterable[str], partitions: frozenset[int]) -> set[str]:
    return {vin for vin in vins if partition_of(vin, PARTITIONS) in partitions}


async def two_instances(tmp_path: Path, store: AtOnce) -> tuple[Instance, Instance]:
    """Two instances, the first holding partitions 0-2, the second 3-5, each handed over what it holds."""
    first, second = instance(tmp_path, store), instance(tmp_path, store)
    await holding(first.held, LOWER)
    await holding(second.held, UPPER)
    return first, second


def test_a_seal_registered_seals_each_waiting_document_once_by_the_instance_holding_its_partition(
    tmp_path: Path, unsigned_specimen: bytes
) -> None:
    store = waiting_store(unsigned_specimen, MOPANI, range(12))
    vins = set(store.kept)
    mopani, _ = sealed(tmp_path, MOPANI, "mopani")

    async def run() -> tuple[Instance, Instance]:
        first, second = await two_instances(tmp_path, store)
        assert first.sent.sent == second.sent.sent == []  # no seal yet: the hand-over sealed nothing
        await asyncio.gather(first.registered(mopani), second.registered(mopani))  # each reads the registry
        return first, second

    first, second = asyncio.run(run())

    assert Counter(first.signed() + second.signed()) == Counter(vins)  # each once
    assert set(first.signed()) == on(vins, LOWER) and set(second.signed()) == on(vins, UPPER)
    signed = [e.vin for i in (first, second) for e in i.sent.models(topics.STATUS, StatusEvent)]
    assert Counter(signed) == Counter(vins)
    assert not store.kept


def test_partitions_handed_over_have_their_waiting_documents_sealed_once_the_seal_is_known(
    tmp_path: Path, unsigned_specimen: bytes
) -> None:
    """The second instance dies; MOPANI's seal comes while nobody holds its partitions; the first takes them."""
    store = waiting_store(unsigned_specimen, MOPANI, range(12))
    vins = set(store.kept)
    namib = document(unsigned_specimen, "NAMIB000000000001", NAMIB)
    store.kept[namib.vin] = (NAMIB, namib)  # its holder has no seal: it keeps waiting
    mopani, _ = sealed(tmp_path, MOPANI, "mopani")

    async def run() -> tuple[Instance, Instance, int]:
        first, second = await two_instances(tmp_path, store)
        await first.registered(mopani)  # the second is gone: its documents wait
        assert set(store.kept) == on(vins, UPPER) | {namib.vin}
        reads = store.reads
        await holding(first.held, LOWER | UPPER)  # the group gives it all six
        await holding(first.held, LOWER | UPPER)  # a rebalance that moves nothing: nothing read
        return first, second, store.reads - reads

    first, second, reads = asyncio.run(run())

    assert Counter(first.signed()) == Counter(vins)  # each once, the upper half by the hand-over
    assert second.sent.sent == []
    assert set(store.kept) == {namib.vin}
    assert reads == 1  # one read of the waiting documents for the partitions handed over


def test_a_hand_over_waits_until_the_registry_is_read_to_its_end(
    tmp_path: Path, unsigned_specimen: bytes
) -> None:
    store = waiting_store(unsigned_specimen, MOPANI, range(4))
    vins = set(store.kept)
    only = instance(tmp_path, store)
    mopani, _ = sealed(tmp_path, MOPANI, "mopani")
    order: list[str] = []

    async def registry_read() -> bool:
        order.append("registry read")
        await only.sealing.on_seal(mopani)  # the registry's last row, read before the hand-over
        return True

    only.held.ready = registry_read
    asyncio.run(holding(only.held, range(PARTITIONS)))

    assert order == ["registry read"]
    assert Counter(only.signed()) == Counter(vins) and not store.kept


def test_a_seal_that_comes_during_a_hand_over_seals_each_document_once(
    tmp_path: Path, unsigned_specimen: bytes
) -> None:
    store = waiting_store(unsigned_specimen, MOPANI, range(8))
    vins = set(store.kept)
    only = instance(tmp_path, store)
    mopani, _ = sealed(tmp_path, MOPANI, "mopani")

    async def run() -> None:
        await only.sealing.on_seal(mopani)  # known, its documents not yet released
        # The assignment noted; its hand-over and the registry's settle at once.
        only.held.held = LOWER | UPPER
        await asyncio.gather(only.sealing.take_over(LOWER | UPPER), only.sealing.release_due())

    asyncio.run(run())
    assert Counter(only.signed()) == Counter(vins)
    assert State.SIGNED in {e.state for e in only.sent.models(topics.STATUS, StatusEvent)}
