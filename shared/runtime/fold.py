"""Messages held between two writes of what they fold into, committed only once written (``shared.held``).

For a fold whose cost is per document written, not per message (status's read
model). Each message is checked against its contract as it comes; a broken one
is kept for the DLQ. When ``HoldPolicy`` says the held messages are due, the
broken ones go to the DLQ, the rest are handed to ``write`` ``keys_per_write``
keys at a time (every message of a key in one call, in order), and only then
are their offsets committed. A fault is retried in place with growing back-off
(the partition waits meanwhile; ``write`` must be idempotent, as a part may be
written twice). A crash, or partitions taken away by a rebalance, leaves the
held messages uncommitted: they are read again, by this process or the
partition's next owner. A failed commit moves the partitions back to their
committed offsets for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRebalanceListener, TopicPartition
from pydantic import BaseModel

from shared.held import Held, HoldPolicy
from shared.kafka import Record, parse_as
from shared.runtime.consumer import ConsumerLoop, Mode
from shared.runtime.delivery import Delivery, Unusable
from shared.runtime.health import Flow

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
# Keys (VINs) whose held messages go to one call of the writer: bounds what is parsed at once
# (1,000 vehicles of five status events: about 6.5 MB).
HELD_KEYS_PER_WRITE = 1_000
QUIET_S = 1.0  # nothing new this long: what is held is written
HELD_STOP_S = 10.0  # how long a stopping process writes what it holds before it leaves it to the broker


@dataclass
class HoldState:
    """What a held subscription keeps between its batches."""

    held: Held = field(default_factory=Held)
    broken: list[tuple[Record, Unusable]] = field(default_factory=list)  # for the DLQ with the next write
    epoch: int = 0  # moves when partitions are taken away: a write begun before then is not committed
    rewind_due: bool = False  # a failed commit's move back to the committed offsets is still to be done
    last_came: float = 0.0  # when the last record came: the topic is quiet after a while without one

    def drop(self) -> None:
        """Forget everything held (the broker still has it, uncommitted)."""
        self.held.take()
        self.broken.clear()
        self.epoch += 1


class DropOnRevoke(ConsumerRebalanceListener):
    """Drops what is held when the group takes partitions away (their next owner reads them again)."""

    def __init__(self, state: HoldState) -> None:
        self.state = state

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            self.state.drop()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class HeldFold(Mode, Generic[M]):
    """Holds a topic's messages until due, writes them through ``write``, then commits (module docstring)."""

    def __init__(
        self,
        delivery: Delivery[M],
        write: Callable[[list[M]], Awaitable[object]],
        *,
        policy: HoldPolicy,
        flow: Flow,
        gather_ms: int = 0,
        keys_per_write: int = HELD_KEYS_PER_WRITE,
    ) -> None:
        self.delivery, self.write, self.policy, self.flow = delivery, write, policy, flow
        self.keys_per_write = keys_per_write
        self.state, self.lock = HoldState(), asyncio.Lock()
        # A poll may come back empty under a flood too (the broker gathers for ``gather_ms``):
        # the topic is quiet when nothing came for two such waits.
        self.quiet_s = max(QUIET_S, 2 * gather_ms / 1000)

    def listener(self) -> ConsumerRebalanceListener:
        return DropOnRevoke(self.state)

    def behind(self, records: int) -> None:
        self.flow.behind = records + self.state.held.count

    async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> None:
        state = self.state
        async with self.lock:
            if state.rewind_due:  # these records came from where a failed commit left off
                await self._rewind(loop)
                return
            now = state.last_came = time.monotonic()
            for record in records:
                partition, body = TopicPartition(record.topic, record.partition), record.value or b""
                checked = self.delivery.read(record)  # kept as bytes, parsed again when written (2 µs)
                if isinstance(checked, Unusable):
                    state.broken.append((record, checked))
                    state.held.add(partition, record.offset, record.key, None, now)
                else:
                    state.held.add(partition, record.offset, record.key, body, now)
            if self.policy.due(state.held, time.monotonic()):
                with self.flow.batch():
                    await self._write(loop)

    async def quiet(self, loop: ConsumerLoop) -> None:
        state = self.state
        async with self.lock:
            if state.rewind_due:
                await self._rewind(loop)
            elif time.monotonic() - state.last_came >= self.quiet_s and (
                self.policy.due(state.held, time.monotonic(), quiet=True) or state.broken
            ):
                with self.flow.batch():
                    await self._write(loop)

    async def stopping(self, loop: ConsumerLoop) -> None:
        if not (self.state.held or self.state.broken):
            return

        async def locked() -> None:
            async with self.lock:  # a write under way (or being retried) finishes first, within the bound
                await self._write(loop)

        try:
            await asyncio.wait_for(locked(), HELD_STOP_S)
        except TimeoutError:
            log.warning(
                "%s: held messages not written before stop; read again at start", loop.subscription.topic
            )

    async def _write(self, loop: ConsumerLoop) -> None:
        state = self.state
        taken, dead, at, began = state.held.take(), state.broken[:], state.epoch, time.monotonic()
        state.broken.clear()
        parts = taken.parts(self.keys_per_write)
        done = 0
        while state.epoch == at:  # else the partitions were taken away: the broker keeps it all
            try:
                while dead:
                    await self.delivery.keep(*dead[0])
                    dead.pop(0)
                while done < len(parts):
                    events = [parse_as(self.delivery.model, body) for body in taken.bodies(parts[done])]
                    await self.write(events)
                    self.delivery.meter.handled.inc(len(events))
                    done += 1
                    if self.flow.behind is not None:  # the board's "not counted yet" moves as it is written
                        self.flow.behind = max(0, self.flow.behind - len(events))
            except Exception:
                self.delivery.meter.failed.inc(taken.count)
                self.flow.failing_since = self.flow.failing_since or time.monotonic()
                await self.delivery.backoff.failed()
                continue
            self.flow.failing_since = None
            self.delivery.backoff.succeeded()
            if state.epoch == at and not await loop.commit(taken.offsets):
                state.drop()  # a rebalance or the broker away: read it again from the commit
                await self._rewind(loop)
                return
            log.info(
                "%s: wrote %d messages of %d keys, held %.1f s, in %.1f s",
                loop.subscription.topic,
                taken.count,
                len(taken.groups),
                began - taken.since,
                time.monotonic() - began,
            )
            return

    async def _rewind(self, loop: ConsumerLoop) -> None:
        self.state.rewind_due = True
        try:
            await loop.rewind()
        except Exception as exc:  # the broker away: tried again before the next batch
            log.warning("%s: rewind failed (%s); tried again", loop.subscription.topic, exc)
        else:
            self.state.rewind_due = False
