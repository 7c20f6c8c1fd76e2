"""The one adapter that owns aiokafka's consume and commit loop; every consume mode runs inside it.

A ``ConsumerLoop`` polls one topic with aiokafka's public consumer API and hands
each batch of records (in offset order per partition) to its ``Mode``:

- the mode returns: the loop commits the batch's offsets (``Subscription.commit``;
  a mode that commits for itself, the held fold, sets it off);
- the mode returns what is still to come of the batch (``Settling``: its sends'
  acknowledgements): the loop reads and handles the next batch meanwhile, then
  awaits it and commits, in order, with at most one batch settling at a time. On
  a cluster each acknowledgement waits for two brokers (``acks=all``) and each
  commit for the offsets topic's replicas: a stage that waited for both before
  reading on left the machine's cores idle between its batches;
- the mode raises (a transient fault, after its back-off), or a batch's settling
  does: the loop moves each partition back to the first record not committed
  (of the batch settling, else of the batch), so those batches come again,
  uncommitted;
- with ``commit_every_ms``, settled batches are committed together, at most that
  often, and at once when the topic goes quiet, before partitions are taken
  away and when the loop stops: each commit is a replicated write of its own
  on a cluster. A process that dies reads again what it handled since its last
  commit, as after any crash (every stage is idempotent);
- a poll that waited its whole time and brought nothing tells the mode the topic
  is quiet; one that came back at once with nothing (a rebalance in progress)
  pauses a little, so the loop cannot spin.

Each poll waits up to ``poll_ms`` and returns as soon as records are fetched:
nothing sleeps between polls, so a record never waits for a sleep to end.
Stopping lets the current batch finish (within a bound), then lets the mode
write what it still holds, then leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from shared.kafka import Record, consumer_options
from shared.observability.metrics import TopicMeter
from shared.runtime.partitions import HeldPartitions
from shared.settings import CocSettings

log = logging.getLogger(__name__)

# An empty poll that came back this much faster than its wait found no partition to wait on
# (a rebalance in progress): the loop pauses this long before it asks again, so it cannot spin.
EMPTY_POLL_PAUSE_S = 0.05
# What a gathering fetch waits for at most: about 1,700 status events, far more than a second of
# them at a line's pace, so the wait ends it, not the size.
GATHER_BYTES = 1 << 20
# How long a stopping loop lets its current batch finish before it is cancelled (then redelivered).
STOP_GRACE_S = 10.0
# How long a rebalance waits for the batch settling to be committed before it takes partitions away.
REVOKE_SETTLE_S = 30.0
# The pause after a poll the broker did not answer, before the next.
BROKER_AWAY_PAUSE_S = 1.0


@dataclass(frozen=True)
class Subscription:
    """How one topic is read: by a consumer group (the instances share it) or by every instance whole."""

    topic: str
    group_id: str | None  # None: every instance reads every partition, nothing committed
    from_start: bool = True  # where a reader with no committed offset begins
    max_records: int = 500
    poll_ms: int = 500
    gather_ms: int = 0  # how long the broker may hold a fetch to gather records (0: answer with the first)
    commit: bool = True  # commit each handled batch; False: the mode commits for itself
    ahead: bool = True  # read and handle the next batch while the last one settles (module docstring)
    commit_every_ms: int = 0  # settled batches committed together at most this often (0: each batch)

    def options(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest" if self.from_start else "latest",
            "fetch_min_bytes": GATHER_BYTES if self.gather_ms else 1,
            "fetch_max_wait_ms": self.gather_ms or 500,  # 500: the consumer's own default
        }


def gather_while_flowing(consumer: AIOKafkaConsumer, sub: Subscription, *, flowing: bool) -> None:
    """Let the broker gather a subscription's fetches while records flow, and wait for the first when quiet.

    A gathering fetch (``gather_ms``) is answered after ``gather_ms`` even when it
    found nothing, so an idle gathering consumer asked each broker leading one of
    its partitions 25 times a second (at 40 ms): on the three-broker cluster that
    was about 600 empty fetches a second at rest, a third of a core of the
    brokers' CPU (their JMX counters and CPU time, 2026-12-08). Once a poll waited
    its whole time for nothing, the fetches wait instead for the first record (up
    to ``poll_ms``), as the consumer's defaults do; the first poll that brings
    records turns the gathering on again.

    aiokafka 0.14 takes both values from its fetcher for each fetch request it
    builds and has no public way to change them on a running consumer;
    ``tests/unit/shared/test_consumer_loop.py`` fails if that stops being so.
    """
    if not sub.gather_ms:
        return
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None:
        return
    fetcher._fetch_min_bytes = GATHER_BYTES if flowing else 1
    fetcher._fetch_max_wait_ms = sub.gather_ms if flowing else sub.poll_ms


# What a mode may return from ``handle``: the rest of the batch's work (its sends' acknowledgements),
# awaited by the loop before it commits the batch, while it reads and handles the next one.
Settling = Awaitable[None]


@dataclass
class Unsettled:
    """A batch handled and committed only once its settling is done (``ConsumerLoop``)."""

    first: dict[TopicPartition, int]  # per partition, the batch's first offset (where a fault goes back)
    after: dict[TopicPartition, int]  # per partition, the offset after its last record (what is committed)
    done: asyncio.Task[None]


class Mode:
    """What a consume mode gives the loop; the defaults do nothing."""

    async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> Settling | None:
        raise NotImplementedError

    async def quiet(self, loop: ConsumerLoop) -> None:
        """A poll waited its whole time and brought nothing."""

    async def stopping(self, loop: ConsumerLoop) -> None:
        """The loop has stopped polling; its consumer is still there (to write and commit what is held)."""

    def behind(self, records: int) -> None:
        """Records waiting on the broker for this subscription after the last poll."""

    def listener(self) -> ConsumerRebalanceListener | None:
        """Told of partitions assigned and taken away (a group subscription only)."""
        return None


class SettledFirst(ConsumerRebalanceListener):
    """Before partitions are taken away, the batch settling is committed while they are still held.

    Then the mode's own listener, if any, is told.
    """

    def __init__(self, loop: ConsumerLoop, then: ConsumerRebalanceListener | None) -> None:
        self.loop, self.then = loop, then

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        unsettled = self.loop._unsettled
        if unsettled is not None:
            # Its failure is the loop's to handle (``settle``); here it is only awaited.
            await asyncio.wait([unsettled.done], timeout=REVOKE_SETTLE_S)
        await self.loop.commit_settled()  # while the partitions are still held
        if self.then is not None:
            told = self.then.on_partitions_revoked(revoked)
            if inspect.isawaitable(told):
                await told

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.then is not None:
            told = self.then.on_partitions_assigned(assigned)
            if inspect.isawaitable(told):
                await told


class ConsumerLoop:
    """One topic's consumer, polled by one task, its batches handed to one mode."""

    def __init__(
        self,
        settings: CocSettings,
        subscription: Subscription,
        mode: Mode,
        *,
        client_id: str,
        meter: TopicMeter | None = None,
    ) -> None:
        self.settings, self.subscription, self.mode, self.client_id = settings, subscription, mode, client_id
        self.meter = meter or TopicMeter.unregistered()  # failed messages, time per batch
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._taken: dict[TopicPartition, int] = {}  # per partition, the offset after the last record taken
        self._committed: dict[TopicPartition, int] = {}  # per partition, this process's last commit
        self._unsettled: Unsettled | None = None  # the batch handled, its sends not yet all acknowledged
        self._settled_offsets: dict[TopicPartition, int] = {}  # settled, not yet committed (commit_every_ms)
        self._last_commit = 0.0  # time.monotonic() of the last commit of settled batches

    async def start(self) -> None:
        sub = self.subscription
        self.consumer = AIOKafkaConsumer(
            client_id=self.client_id, **consumer_options(self.settings), **sub.options()
        )
        await self.consumer.start()
        listener = self.mode.listener()
        if sub.group_id is None:
            self.consumer.subscribe([sub.topic])
        else:
            if isinstance(listener, HeldPartitions):
                listener.consumer = self.consumer  # to know the topic's size at an assignment
            self.consumer.subscribe([sub.topic], listener=SettledFirst(self, listener))
        self._stopping = False
        self._task = asyncio.create_task(self._run(self.consumer), name=f"consume {sub.topic}")

    async def stop(self) -> None:
        """Finish the current batch (within ``STOP_GRACE_S``), let the mode write what it holds, leave."""
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_S)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.consumer is not None:
            with contextlib.suppress(Exception):  # stopping: a mode's failure here is its own to log
                await self.mode.stopping(self)
            await self.consumer.stop()
            self.consumer = None

    async def topics(self) -> bool:
        """Whether the broker answers a metadata request (for /healthz)."""
        if self.consumer is None:
            return False
        await self.consumer.topics()
        return True

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while not self._stopping:
                try:
                    await self.poll_once(consumer)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a fault of the loop itself: logged, and the loop goes on
                    log.exception("%s: consume loop fault; polling again", self.subscription.topic)
                    await asyncio.sleep(BROKER_AWAY_PAUSE_S)
            await self.settle()
            await self.commit_settled()
        finally:
            if self._unsettled is not None:  # cancelled: its records are read again, uncommitted
                self._unsettled.done.cancel()
                self._unsettled = None

    async def poll_once(self, consumer: AIOKafkaConsumer) -> None:
        """One poll, and what follows from it: the batch handled and committed, or rewound; or a quiet topic."""
        sub, began = self.subscription, time.monotonic()
        try:
            batches = await consumer.getmany(timeout_ms=sub.poll_ms, max_records=sub.max_records)
        except KafkaError as exc:
            log.warning("%s: poll failed (%s); polling again", sub.topic, exc)
            await asyncio.sleep(BROKER_AWAY_PAUSE_S)
            return
        for partition, records in batches.items():
            if records:
                self._taken[partition] = records[-1].offset + 1
        self.mode.behind(self._behind(consumer))
        if not batches:
            await self.settle()
            await self.commit_settled()
            if time.monotonic() - began < sub.poll_ms / 2000:
                await asyncio.sleep(EMPTY_POLL_PAUSE_S)
            else:
                gather_while_flowing(consumer, sub, flowing=False)
                await self.mode.quiet(self)
            return
        gather_while_flowing(consumer, sub, flowing=True)
        records = tuple(chain.from_iterable(batches.values()))
        first = {partition: found[0].offset for partition, found in batches.items() if found}
        after = {partition: found[-1].offset + 1 for partition, found in batches.items() if found}
        handling = time.perf_counter()
        try:
            settling = await self.mode.handle(records, self)
            if settling is not None and not sub.ahead:
                await settling
                settling = None
        except Exception:  # transient (the mode waited its back-off): the batch comes again
            self.meter.failed.inc(len(records))
            self.seek({**first, **await self.settle()})
            return
        finally:
            self.meter.batches.observe(time.perf_counter() - handling)
        redo = await self.settle()  # the batch before, settling while this one was read and handled
        if redo:  # it failed: this batch comes again after it, uncommitted
            if settling is not None:
                with contextlib.suppress(Exception):  # its sends are awaited, not left behind
                    await settling
            self.seek({**first, **redo})
            return
        if settling is None:
            if sub.commit:
                await self.commit(after)
                log.info("%s: handled %d records", sub.topic, len(records))
            return
        self._unsettled = Unsettled(
            first, after, asyncio.create_task(self._settled(settling, after, len(records)))
        )

    async def _settled(self, settling: Settling, after: dict[TopicPartition, int], count: int) -> None:
        """A batch's settling awaited, then its offsets committed (``Subscription.commit``), or kept to be."""
        await settling
        sub = self.subscription
        if not sub.commit:
            return
        self._settled_offsets.update(after)
        log.info("%s: handled %d records", sub.topic, count)
        if (time.monotonic() - self._last_commit) * 1000 >= sub.commit_every_ms:
            await self.commit_settled()

    async def commit_settled(self) -> None:
        """Commit the offsets of the batches settled since the last such commit, if any."""
        offsets, self._settled_offsets = self._settled_offsets, {}
        if offsets:
            self._last_commit = time.monotonic()
            await self.commit(offsets)

    async def settle(self) -> dict[TopicPartition, int]:
        """Await the batch settling, if any; when it failed, its first offsets (where to go back), else {}.

        Whoever gets a non-empty answer moves the partitions back (``seek``) before
        the next poll; this method does not, so a caller can go back further.
        """
        unsettled = self._unsettled
        if unsettled is None:
            return {}
        try:
            await unsettled.done
        except asyncio.CancelledError:  # the loop is cancelled: its ``_run`` cancels the batch settling
            raise
        except Exception:  # transient (the mode waited its back-off): the batch comes again
            self._unsettled = None
            self.meter.failed.inc(sum(unsettled.after[p] - unsettled.first[p] for p in unsettled.first))
            return unsettled.first
        self._unsettled = None
        return {}

    def _behind(self, consumer: AIOKafkaConsumer) -> int:
        """Records on the broker not yet taken, by the high watermarks of the last fetches.

        Counted for the partitions assigned that have given a record since this
        process started (a partition not yet read adds nothing: a lower bound
        until each has been read once).
        """
        total = 0
        for partition in consumer.assignment():
            end, after = consumer.highwater(partition), self._taken.get(partition)
            if end is not None and after is not None:
                total += max(0, end - after)
        return total

    def lags(self) -> Iterator[tuple[int, int]]:
        """Per partition owned: the records on the broker past this process's last commit (else its reads).

        By the high watermark of the last fetch; a partition not yet read since the
        start gives nothing (its lag is not known yet). For /metrics.
        """
        consumer = self.consumer
        if consumer is None:
            return
        for partition in consumer.assignment():
            end = consumer.highwater(partition)
            at = self._committed.get(partition, self._taken.get(partition))
            if end is not None and at is not None:
                yield partition.partition, max(0, end - at)

    def seek(self, offsets: dict[TopicPartition, int]) -> None:
        """Move partitions to offsets (those taken away meanwhile are left to their next owner)."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        for partition, offset in offsets.items():
            if partition in assigned:
                self.consumer.seek(partition, offset)

    async def commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit offsets for the group; False when it failed (a rebalance, the broker away): read again later."""
        if self.subscription.group_id is None or not offsets:
            return True
        assert self.consumer is not None
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            log.warning(
                "%s: commit failed (%s); those records will be read again", self.subscription.topic, exc
            )
            return False
        self._committed.update(offsets)
        return True

    async def rewind(self) -> None:
        """Move every assigned partition back to its committed offset (its start when none was committed).

        Not ``seek_to_committed``: it leaves a partition never committed on where it is.
        """
        assert self.consumer is not None
        for partition in self.consumer.assignment():
            committed = await self.consumer.committed(partition)
            if committed is None:
                await self.consumer.seek_to_beginning(partition)
            else:
                self.consumer.seek(partition, committed)
