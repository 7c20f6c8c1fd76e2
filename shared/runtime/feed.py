"""Parsed batches of a topic to one handler: a live view, or a reader whose cost is per batch.

A message that breaks the contract only goes to the DLQ (no status: these
readers read the status topic, and would read their own event back); the rest of
the batch goes on. A transient fault redoes the whole batch, so the handler must
be idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel

from shared.kafka import Record
from shared.runtime.consumer import ConsumerLoop, Mode
from shared.runtime.delivery import Delivery, Unusable
from shared.runtime.health import Flow

M = TypeVar("M", bound=BaseModel)


class Feed(Mode, Generic[M]):
    """Hands each batch's usable messages to ``handler`` at once."""

    def __init__(
        self, delivery: Delivery[M], handler: Callable[[list[M]], Awaitable[None]], *, flow: Flow
    ) -> None:
        self.delivery, self.handler, self.flow = delivery, handler, flow

    def behind(self, records: int) -> None:
        self.flow.behind = records

    async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> None:
        with self.flow.batch():
            parsed: list[M] = []
            for record in records:
                message = self.delivery.read(record)
                if isinstance(message, Unusable):
                    await self.delivery.keep(record, message)
                else:
                    parsed.append(message)
            await self.delivery.transient(self.handler(parsed))
            self.delivery.meter.handled.inc(len(parsed))
