"""A table every instance reads whole from the topic's beginning (the approvals, the release policies).

No consumer group, nothing committed: each instance keeps the whole table, read
again from the beginning at every start. Each message is handled in the trace it
came with, one at a time in offset order. A transient fault waits out the
back-off and reads the batch again (a table row applied twice is applied once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel

from shared.kafka import Record
from shared.runtime.consumer import ConsumerLoop, Mode
from shared.runtime.delivery import Delivery
from shared.runtime.health import Flow
from shared.telemetry import Tracing

M = TypeVar("M", bound=BaseModel)


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

    async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> None:
        with self.flow.batch():
            await self.delivery.transient(self._batch(records))

    async def _batch(self, records: Sequence[Record]) -> None:
        await self._rows(records)
        if self.settle is not None:
            await self.settle()

    async def _rows(self, records: Sequence[Record]) -> None:
        for record in records:
            with self.tracing.consumer_span(f"{record.topic} process", record.headers or ()):
                await self.delivery.handle(record, self.delivery.read(record), self.handler)
