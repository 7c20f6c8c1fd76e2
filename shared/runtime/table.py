"""A table every instance reads whole from the topic's beginning (the approvals, the release policies).

No consumer group, nothing committed: each instance keeps the whole table, read
again from the beginning at every start. Each message is handled in the trace it
came with, one at a time in offset order. A transient fault waits out the
back-off and reads the batch again (a table row applied twice is applied once).
``read_to_now`` waits until the rows on the topic as of a moment are handled:
a hand-over of partitions (``shared.runtime.partitions``) decides against
tables caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from shared.kafka import Record
from shared.runtime.consumer import ConsumerLoop, Mode
from shared.runtime.delivery import Delivery
from shared.runtime.health import Flow
from shared.telemetry import Tracing

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
# How long ``read_to_now`` waits for a note before it looks again (the loop may be starting).
NOTE_WAIT_S = 1.0


class TableReader(Mode, Generic[M]):
    """Hands each row of the table to ``handler`` with the delivery policy, in order."""

    def __init__(
        self,
        delivery: Delivery[M],
        handler: Callable[[M], Awaitable[None]],
        *,
        tracing: Tracing,
        flow: Flow,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.delivery, self.handler, self.tracing, self.flow = delivery, handler, tracing, flow
        self.settle = settle  # awaited after each batch's rows: what they leave to do once per batch
        self.read: dict[TopicPartition, int] = {}  # per partition, where the rows handled end
        self._moved = asyncio.Event()  # set each time ``read`` is noted

    async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> None:
        with self.flow.batch():
            await self.delivery.transient(self._batch(records))
        await self._note(loop)

    async def quiet(self, loop: ConsumerLoop) -> None:
        await self._note(loop)

    async def _note(self, loop: ConsumerLoop) -> None:
        """Where the rows handled end: the consumer's position once a batch is handled, or nothing came."""
        consumer = loop.consumer
        if consumer is None:
            return
        try:
            for partition in consumer.assignment():
                self.read[partition] = await consumer.position(partition)
        except KafkaError as exc:  # the assignment moved meanwhile: noted at the next batch
            log.info("%s: position not read (%s)", self.flow.topic, exc)
        self._moved.set()

    async def read_to_now(self, loop: ConsumerLoop, within_s: float) -> bool:
        """Wait until every row on the topic as of now is handled (with its settle); False if not within ``within_s``."""
        deadline = time.monotonic() + within_s
        ends: dict[TopicPartition, int] | None = None
        while (left := deadline - time.monotonic()) > 0:
            self._moved.clear()
            consumer = loop.consumer
            if ends is None and consumer is not None and consumer.assignment():
                with contextlib.suppress(TimeoutError, KafkaError):  # asked again after the next note
                    ends = await asyncio.wait_for(consumer.end_offsets(list(consumer.assignment())), left)
            if ends is not None and all(self.read.get(tp, 0) >= end for tp, end in ends.items()):
                return True
            with contextlib.suppress(TimeoutError):  # a batch handled or a quiet poll sets it; else ask again
                await asyncio.wait_for(self._moved.wait(), min(max(left, 0.0), NOTE_WAIT_S))
        return False

    async def _batch(self, records: Sequence[Record]) -> None:
        await self._rows(records)
        if self.settle is not None:
            await self.settle()

    async def _rows(self, records: Sequence[Record]) -> None:
        for record in records:
            with self.tracing.consumer_span(f"{record.topic} process", record.headers or ()):
                await self.delivery.handle(record, self.delivery.read(record), self.handler)
