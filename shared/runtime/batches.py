"""A stage's own topic, read by its consumer group in batches: each VIN in order, VINs overlapped, one commit.

A batch's records are grouped by key (VIN); each VIN's messages are handled in
their order, different VINs at once (at most ``overlap``). Every send of the
batch is queued without waiting for its acknowledgement, then all of them are
awaited together, then the loop commits once. A transient fault anywhere
redoes the whole batch; every stage is idempotent, so what was done before the
fault is done again to no effect. Each record is handled in its own trace,
taken from its headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from aiokafka import ConsumerRebalanceListener
from pydantic import BaseModel

from shared.kafka import Record
from shared.runtime.consumer import ConsumerLoop, Mode, Settling
from shared.runtime.delivery import Delivery, Unusable
from shared.runtime.emitter import Emitter, Sends
from shared.runtime.health import Flow
from shared.runtime.partitions import HeldPartitions
from shared.telemetry import Tracing

M = TypeVar("M", bound=BaseModel)
# A batch's work done once before its messages are handled: the first usable message of each VIN
# (key), with the trace id it came with. It may only do what the handlers would do anyway,
# idempotently (a batch can come again); its fault is transient, like a handler's.
Prepare = Callable[[list[tuple[M, str | None]]], Awaitable[object]]


class VinBatches(Mode, Generic[M]):
    """Hands each message of a batch to ``handler`` with the delivery policy (module docstring)."""

    def __init__(
        self,
        delivery: Delivery[M],
        handler: Callable[[M], Awaitable[None]],
        *,
        emitter: Emitter,
        tracing: Tracing,
        flow: Flow,
        overlap: int,
        prepare: Prepare[M] | None = None,
        held: HeldPartitions | None = None,
    ) -> None:
        self.delivery, self.handler, self.emitter, self.tracing = delivery, handler, emitter, tracing
        self.flow, self.overlap, self.prepare = flow, max(1, overlap), prepare
        self.held = held  # told of the partitions this process holds (``shared.runtime.partitions``)

    def listener(self) -> ConsumerRebalanceListener | None:
        return self.held

    async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> Settling:
        with self.flow.batch():
            sends = await self.delivery.transient(self._batch(records))
        return self._confirmed(sends)

    async def _confirmed(self, sends: Sends) -> None:
        """The batch's acknowledgements, awaited by the loop while it reads and handles the next batch."""
        with self.flow.settling():
            await self.delivery.transient(sends.confirmed())

    async def _batch(self, records: Sequence[Record]) -> Sends:
        by_key: dict[bytes | None, list[tuple[Record, M | Unusable]]] = {}
        firsts: dict[bytes | None, tuple[M, str | None]] = {}
        for record in records:
            parsed = self.delivery.read(record)
            by_key.setdefault(record.key, []).append((record, parsed))
            if not isinstance(parsed, Unusable) and record.key not in firsts:
                firsts[record.key] = (parsed, self.tracing.trace_id_in(record.headers or ()))
        if self.prepare is not None and firsts:
            await self.prepare(list(firsts.values()))
        limit = asyncio.Semaphore(self.overlap)

        async def in_order(messages: list[tuple[Record, M | Unusable]]) -> None:
            async with limit:
                for record, parsed in messages:  # a fault stops the VIN here: its later messages wait
                    with self.tracing.consumer_span(f"{record.topic} process", record.headers or ()):
                        await self.delivery.handle(record, parsed, self.handler)

        with self.emitter.confirming() as sends:
            outcomes = await asyncio.gather(*(in_order(m) for m in by_key.values()), return_exceptions=True)
        faults = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if not faults:
            return sends  # acknowledged later (``_confirmed``), while the loop goes on
        try:
            await sends.confirmed()  # awaited even after a fault: no send is left unconfirmed behind
        except Exception as exc:
            faults.append(exc)
        raise faults[0]
