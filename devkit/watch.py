"""Watching a running pipeline until it is at rest: the one watcher of demo, bench and tests.

A :class:`StatusWatch` reads coc.status.v1 from where it ended when the watch began and
tells, per VIN, the event that speaks for it; :func:`settle` waits until every VIN
settled at its revision and the consumer groups committed everything (nothing
redelivered still to come), then returns each VIN's record, from the status API when a
fetcher is given; :func:`readiness_of` counts such records per state and vehicle group
in the shape of ``GET /v1/readiness``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared import topics
from shared.contracts.events import State, StatusEvent, stage_rank

# States a record rests in: archived, or waiting for a person, or given up on.
SETTLED = frozenset(
    {State.ARCHIVED, State.BLOCKED, State.NEEDS_REVIEW, State.HELD, State.REJECTED, State.FAILED}
)
STATUS_GROUP = f"coc-status.{topics.STATUS}"  # the status service's consumer group
Say = Callable[[str], None]
Records = Callable[[list[str]], Awaitable[Mapping[str, Mapping[str, Any] | None]]]


class NotSettled(TimeoutError):
    """The pipeline did not come to rest in time; the message names what is still open."""


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- watching the status topic ---------------------------------------------------------------


@dataclass
class Seen:
    """What the status topic said about one VIN: the event that speaks for it, and when things happened."""

    revision: int = 0
    current: StatusEvent | None = None  # the event of ``revision`` from the latest stage
    received_at: float | None = None
    archived_at: float | None = None
    events: list[StatusEvent] = field(default_factory=list)

    @property
    def state(self) -> State | None:
        return self.current.state if self.current else None

    @property
    def stage(self) -> str:
        return self.current.stage if self.current else ""


class StatusWatch:
    """Reads coc.status.v1 from where it ended when the watch began; tells when records settle.

    ``expected`` maps each watched VIN to the revision that must settle (a
    correction is revision 2). A VIN is settled once an event of that revision
    (or a later one) says archived, or says a resting state with no archived
    event after it. The topic is one source of truth among two: tests confirm
    what it says with the status API, which may lag (its service may be down).

    The VINs archived, without a state yet and settled are kept as each event
    comes, so asking whether all are (five times a second while 20,000 builds
    run) costs nothing: scanning every VIN each time took half of the
    benchmark's own CPU, taken from the pipeline it measures.
    """

    def __init__(self, bootstrap: str, expected: Mapping[str, int], out: Say = say) -> None:
        self.bootstrap = bootstrap
        self.expected: dict[str, int] = {}
        self.seen: dict[str, Seen] = {}
        self.archived: set[str] = set()
        self.stateless: set[str] = set()
        self.settled_vins: set[str] = set()
        self.latest_at = 0.0  # the time of the latest event of a watched VIN (epoch seconds)
        self.out = out
        self.errors = 0
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None
        self.add(expected)

    def add(self, expected: Mapping[str, int]) -> None:
        for vin, revision in expected.items():
            self.expected[vin] = revision
            self.seen.setdefault(vin, Seen())
            self._tally(vin)

    def _tally(self, vin: str) -> None:
        """Count ``vin`` where it stands now, after an event or a new expected revision."""
        state = self.seen[vin].state
        (self.archived.add if state is State.ARCHIVED else self.archived.discard)(vin)
        (self.stateless.add if state is None else self.stateless.discard)(vin)
        (self.settled_vins.add if self.settled(vin) else self.settled_vins.discard)(vin)

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from shared.kafka import options_for

        partitions = [
            TopicPartition(topics.STATUS, p) for p in await topic_partitions(self.bootstrap, topics.STATUS)
        ]
        consumer = AIOKafkaConsumer(**options_for(self.bootstrap), group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the end offsets now, before anything is published
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        from aiokafka.errors import KafkaError

        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=2000)
            except KafkaError as exc:  # the broker may be away (a test kills it): keep reading
                self.errors += 1
                if self.errors % 20 == 1:
                    self.out(f"status watch: {type(exc).__name__}: {exc}; retrying")
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for record in records:
                    self._take(record.value or b"")

    def _take(self, value: bytes) -> None:
        try:
            event = StatusEvent.model_validate_json(value)
        except ValueError:
            return
        seen = self.seen.get(event.vin)
        if seen is None:
            return
        self._follow(seen, event)
        self._tally(event.vin)

    def _follow(self, seen: Seen, event: StatusEvent) -> None:
        seen.events.append(event)
        at = event.time.timestamp()
        self.latest_at = max(self.latest_at, at)
        if event.state is State.RECEIVED and event.revision == self.expected[event.vin]:
            seen.received_at = seen.received_at or at
        if event.revision < seen.revision:
            return
        if event.revision > seen.revision:
            seen.revision, seen.current, seen.archived_at = event.revision, None, None
        elif seen.current is not None and stage_rank(event.stage) < stage_rank(seen.current.stage):
            # An earlier stage's word arriving late: intake says `received` after publishing the
            # record, so validation's verdict may come first. The status service ranks the same way.
            return
        seen.current = event
        if event.state is State.ARCHIVED:
            seen.archived_at = seen.archived_at or at  # the first time; a redelivery comes later

    def settled(self, vin: str) -> bool:
        seen = self.seen[vin]
        return seen.revision >= self.expected[vin] and seen.state in SETTLED

    def counts(self) -> Counter[str]:
        """VINs per state as the topic tells, 'unseen' for none yet, for progress lines."""
        counter: Counter[str] = Counter()
        for vin, seen in self.seen.items():
            if seen.revision < self.expected[vin] or seen.state is None:
                counter["unseen" if not seen.events else "in flight"] += 1
            else:
                counter[seen.state.value] += 1
        return counter

    def unsettled(self, vins: Iterable[str] | None = None) -> list[str]:
        return [vin for vin in (self.expected if vins is None else vins) if not self.settled(vin)]

    async def wait(
        self,
        condition: Callable[[StatusWatch], bool] | None = None,
        timeout: float = 300,
        what: str = "settled",
        every: float = 10,
    ) -> float:
        """Until ``condition`` holds (default: every watched VIN settled); the seconds it took.

        Prints progress every ``every`` seconds; raises NotSettled naming VINs
        still open and where they stand.
        """
        done = condition or (lambda watch: len(watch.settled_vins) == len(watch.expected))
        began = last = time.monotonic()
        while not done(self):
            now = time.monotonic()
            if now - began > timeout:
                raise NotSettled(f"not {what} after {timeout:.0f}s: {self.describe_open()}")
            if now - last >= every:
                self.out(f"  {now - began:5.0f}s  {self.progress()}")
                last = now
            await asyncio.sleep(0.2)
        return time.monotonic() - began

    def progress(self) -> str:
        counts = self.counts()
        parts = ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
        return f"{len(self.settled_vins)}/{len(self.expected)} settled ({parts})"

    def describe_open(self, limit: int = 15) -> str:
        stuck = self.unsettled()
        lines = [f"{len(stuck)} of {len(self.expected)} VINs not settled; {self.progress()}"]
        for vin in stuck[:limit]:
            seen = self.seen[vin]
            where = f"{seen.state.value} at {seen.stage}" if seen.state else "no event yet"
            lines.append(f"  {vin} revision {seen.revision}/{self.expected[vin]}: {where}")
        return "\n".join(lines)


@contextlib.asynccontextmanager
async def watching(bootstrap: str, expected: Mapping[str, int], out: Say = say) -> AsyncIterator[StatusWatch]:
    """A started StatusWatch, stopped on the way out."""
    watch = StatusWatch(bootstrap, expected, out)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.stop()


async def topic_partitions(bootstrap: str, topic: str, timeout: float = 30) -> list[int]:
    """The topic's partitions; the services create the topics, a moment after a fresh stack started."""
    from aiokafka.admin import AIOKafkaAdminClient

    from shared.kafka import options_for

    admin = AIOKafkaAdminClient(**options_for(bootstrap))
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            described = await admin.describe_topics([topic])
            found = [p["partition"] for t in described if t["error_code"] == 0 for p in t["partitions"]]
            if found:
                return sorted(found)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"topic {topic} has no partitions after {timeout:.0f}s; are the services up?"
                )
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


def readiness_of(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per state and per vehicle group and state, shaped as GET /v1/readiness answers."""
    by_state: dict[str, int] = {state.value: 0 for state in State}
    by_group: dict[str, dict[str, int]] = {}
    for record in records:
        state, group = record["state"], record.get("vehicle_group") or "unknown"
        by_state[state] = by_state.get(state, 0) + 1
        counts = by_group.setdefault(group, {})
        counts[state] = counts.get(state, 0) + 1
    return {"total": sum(by_state.values()), "by_state": by_state, "by_group": by_group}


WAITING_STATES = frozenset({State.BLOCKED.value, State.NEEDS_REVIEW.value, State.HELD.value})


def worklists_of(
    records: Iterable[Mapping[str, Any]], owners: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """Per team, the records that wait for it with the findings it owns, shaped as worklist items."""
    lists: dict[str, list[dict[str, Any]]] = {owner: [] for owner in owners}
    for record in records:
        if record["state"] not in WAITING_STATES:
            continue
        for owner, items in lists.items():
            mine = [f for f in record.get("findings", []) if f.get("owner") == owner]
            if mine:
                items.append({"vin": record["vin"], "state": record["state"], "findings": mine})
    return lists


def at_rest(watch: StatusWatch, quiet_s: float = 30) -> bool:
    """Every VIN archived; or each has a state and no event came for ``quiet_s`` (nothing more will)."""
    if len(watch.archived) == len(watch.seen):
        return True
    if watch.stateless:
        return False
    return time.time() - watch.latest_at > quiet_s


# --- at rest: settled on the topic, consumed by every group, shown by the status API ----------


async def settle(
    watch: StatusWatch,
    expected: Mapping[str, int],
    timeout: float,
    records: Records | None = None,
    out: Say = say,
) -> dict[str, dict[str, Any]]:
    """Wait (bounded) until every VIN is settled; each VIN's record.

    First the status topic says every VIN settled. With ``records`` (a fetcher of
    status API records by VIN) the status service's consumer lag then says when its
    read model has folded all of it (it lags, or was killed), and the status API,
    which is what is checked, is read once per VIN (again only for one not settled
    yet). Without, every other consumer group's lag says when the stages are at rest
    (nothing redelivered still to come), and the records are what the topic said,
    in the API's shape. Raises NotSettled naming what is open at the deadline.
    """
    began = time.monotonic()
    deadline = began + timeout
    watch.add(expected)
    took = await watch.wait(lambda w: not w.unsettled(expected), timeout, f"settled on {topics.STATUS}")
    if len(expected) > 50:
        out(f"  {len(expected)} settled on {topics.STATUS} after {took:.1f}s")
    if records is None:
        await until_consumed(watch.bootstrap, deadline, exclude=(STATUS_GROUP,), out=out)
        return {vin: as_record(watch.seen[vin].current) for vin in expected}
    await until_consumed(watch.bootstrap, deadline, only=(STATUS_GROUP,), out=out)
    pending = dict(expected)
    found: dict[str, dict[str, Any]] = {}
    while True:
        fetched = await records(list(pending))
        for vin, record in fetched.items():
            if record is not None and api_settled(record, pending[vin]):
                found[vin] = dict(record)
                del pending[vin]
        if not pending:
            if len(expected) > 50:
                out(f"  {len(found)} settled in the status API after {time.monotonic() - began:.1f}s")
            return found
        if time.monotonic() > deadline:
            stuck = "\n".join(f"  {vin}: {describe(fetched.get(vin))}" for vin in list(pending)[:20])
            raise NotSettled(
                f"{len(pending)} of {len(expected)} VINs not settled in the status API after "
                f"{timeout:.0f}s (expected revision / where it stands):\n{stuck}"
            )
        await asyncio.sleep(1)


async def until_consumed(
    bootstrap: str,
    deadline: float,
    *,
    only: Sequence[str] = (),
    exclude: Sequence[str] = (),
    every: float = 10,
    out: Say = say,
) -> None:
    """Until the consumer groups (``only`` these, or all but ``exclude``) have committed everything.

    Returns at the deadline too: the check that follows names what is missing.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    from shared.kafka import options_for

    admin = AIOKafkaAdminClient(**options_for(bootstrap))
    ends = AIOKafkaConsumer(**options_for(bootstrap), group_id=None, enable_auto_commit=False)
    await admin.start()
    await ends.start()
    try:
        began = last = time.monotonic()
        while True:
            try:
                lags = await consumer_lags(admin, ends, only, exclude)
            except KafkaError as exc:  # a broker just restarted may not answer everything yet
                lags = {"(unknown)": -1}
                out(f"  consumer lag unknown ({type(exc).__name__}), asking again")
            behind = {group: lag for group, lag in lags.items() if lag}
            now = time.monotonic()
            if not behind or now > deadline:
                return
            if now - last >= every:
                out(f"  {now - began:5.0f}s  messages not yet consumed: {behind}")
                last = now
            await asyncio.sleep(0.5)
    finally:
        await ends.stop()
        await admin.close()


async def consumer_lags(admin: Any, ends: Any, only: Sequence[str], exclude: Sequence[str]) -> dict[str, int]:
    """Per consumer group, the messages of its topics it has not committed yet."""
    from aiokafka import TopicPartition

    groups = list(only) or [g for g, _kind in await admin.list_consumer_groups() if g not in exclude]
    offsets = {group: await admin.list_consumer_group_offsets(group) for group in groups}
    read = {
        group: sorted({tp.topic for tp in committed} or ([topics.STATUS] if group == STATUS_GROUP else []))
        for group, committed in offsets.items()
    }
    # One request on the admin client given, not a client of its own per topic: on the cluster each
    # new client is a TLS and SCRAM handshake with a broker, and this runs every half second.
    wanted = sorted({topic for names in read.values() for topic in names})
    described = await admin.describe_topics(wanted) if wanted else []
    partitions_of = {
        t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described if not t["error_code"]
    }
    lags = {}
    for group in groups:
        committed = offsets[group]
        partitions = [TopicPartition(topic, p) for topic in read[group] for p in partitions_of.get(topic, [])]
        end = await ends.end_offsets(partitions) if partitions else {}
        lags[group] = sum(
            end[tp] - max(committed[tp].offset, 0) if tp in committed else end[tp] for tp in partitions
        )
    return lags


def as_record(event: StatusEvent | None) -> dict[str, Any]:
    """A status event in the shape of the status API's record (for checks made on the topic)."""
    if event is None:
        return {"revision": 0, "state": None, "stage": "", "findings": [], "owner": None, "timeline": []}
    return {
        "revision": event.revision,
        "state": event.state.value,
        "stage": event.stage,
        "vehicle_group": event.vehicle_group,
        "findings": [finding.model_dump(mode="json") for finding in event.findings],
        "owner": event.owner.value if event.owner else None,
        "timeline": [],
    }


def api_settled(record: Mapping[str, Any], revision: int) -> bool:
    return int(record["revision"]) >= revision and State(record["state"]) in SETTLED


def describe(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "no status record"
    return f"revision {record['revision']} {record['state']} at {record['stage']}"
