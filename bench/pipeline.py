"""End-to-end throughput of a running stack: builds straight to coc.builds.v1, timed until archived.

    python -m bench.pipeline [--builds N] [--seed S] [--timeout SECONDS]

Against the stack the settings point at (``COC_`` environment variables, else the
defaults of ``coc stack up``): the sample approvals are posted to intake over HTTP
(type-approval token), then N clean sample builds, each with a VIN no earlier run
used, are published to coc.builds.v1 the way a factory MES does (one message per
build, key = VIN). A consumer of coc.status.v1, positioned at its end before the
first publish, sees every record arrive in its final state; nothing polls the
services, so the measurement does not load them.

Printed: builds archived per second from the first publish to the last archive,
and the median and 99th percentile of the time from publish to archived (our
publish time against the archive stage's ``archived`` event) and from intake's
``received`` event to the ``archived`` one.

The pieces (VIN tags, publishing, the status watch) are also what the end-to-end
tests drive the stack with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared import topics
from shared.contracts import BuildRecord
from shared.contracts.events import State, StatusEvent, stage_rank
from shared.settings import ServiceSettings
from shared.vin import ALPHABET, check_digit

# States a record rests in: archived, or waiting for a person, or given up on.
SETTLED = frozenset(
    {State.ARCHIVED, State.BLOCKED, State.NEEDS_REVIEW, State.HELD, State.REJECTED, State.FAILED}
)
VIN_ALPHABET = "".join(sorted(ALPHABET))  # ISO 3779: no I, O, Q
TAG_INDEX = 9  # VIN position 10, the model-year code: no rule reads it, the serial stays unique
PUBLISH_CHUNK = 500
Say = Callable[[str], None]


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- VINs of one's own -----------------------------------------------------------------------


def retag(build: BuildRecord, tag: str) -> BuildRecord:
    """The build with ``tag`` at VIN position 10, so sets made with different tags share no VIN.

    Within one sample set the VIN stays unique (plant code and serial are kept).
    A well-formed VIN gets its ISO 3779 check digit again, so the records stay
    clean whatever check-digit mode the validation runs with; a VIN with a
    planted defect (18 characters, a letter O) keeps its defect.
    """
    if len(tag) != 1 or tag not in VIN_ALPHABET:
        raise ValueError(f"a VIN tag is one character of {VIN_ALPHABET}, not {tag!r}")
    vin = build.vin[:TAG_INDEX] + tag + build.vin[TAG_INDEX + 1 :]
    if len(vin) == 17 and set(vin) <= set(VIN_ALPHABET):
        vin = vin[:8] + check_digit(vin) + vin[9:]
    return build.model_copy(update={"vin": vin})


def retag_all(builds: Iterable[BuildRecord], tag: str) -> list[BuildRecord]:
    tagged = [retag(build, tag) for build in builds]
    vins = Counter(build.vin for build in tagged)
    doubles = [vin for vin, n in vins.items() if n > 1]
    if doubles:
        raise ValueError(f"tagging made VINs collide: {doubles[:5]}")
    return tagged


# --- publishing as an MES does ---------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One raw message for coc.builds.v1 (a test may send bytes no contract allows)."""

    value: bytes
    key: bytes | None
    partition: int | None = None

    @classmethod
    def of(cls, build: BuildRecord) -> Message:
        return cls(build.model_dump_json().encode(), build.vin.encode())


async def publish(
    bootstrap: str,
    messages: Sequence[Message],
    out: Say | None = None,
    topic: str = topics.BUILDS,
    rate: float = 0.0,
) -> list[tuple[float, int]]:
    """Publish in order, acks=all; per message the wall-clock time it was sent and its partition.

    With ``rate`` (messages per second) the sends are paced the way a plant's line
    produces builds; without it everything goes out as fast as the broker takes it.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    sent: list[tuple[float, int]] = []
    began = time.monotonic()
    try:
        for start in range(0, len(messages), PUBLISH_CHUNK):
            chunk = messages[start : start + PUBLISH_CHUNK]
            times, futures = [], []
            for number, message in enumerate(chunk, start):
                if rate > 0:
                    await asyncio.sleep(max(0.0, began + number / rate - time.monotonic()))
                times.append(time.time())
                futures.append(
                    await producer.send(topic, message.value, key=message.key, partition=message.partition)
                )
            metadata = await asyncio.gather(*futures)
            sent += [(t, m.partition) for t, m in zip(times, metadata, strict=True)]
            if out is not None and len(messages) > PUBLISH_CHUNK:
                out(f"published {len(sent)}/{len(messages)} to {topic}")
    finally:
        await producer.stop()
    return sent


async def publish_builds(
    bootstrap: str, builds: Sequence[BuildRecord], out: Say | None = None, rate: float = 0.0
) -> dict[str, float]:
    """One message per build, key = VIN; the time each VIN was published."""
    sent = await publish(bootstrap, [Message.of(build) for build in builds], out, rate=rate)
    return {build.vin: at for build, (at, _partition) in zip(builds, sent, strict=True)}


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
    """

    def __init__(self, bootstrap: str, expected: Mapping[str, int], out: Say = say) -> None:
        self.bootstrap = bootstrap
        self.expected = dict(expected)
        self.seen: dict[str, Seen] = {vin: Seen() for vin in expected}
        self.out = out
        self.errors = 0
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None

    def add(self, expected: Mapping[str, int]) -> None:
        for vin, revision in expected.items():
            self.expected[vin] = revision
            self.seen.setdefault(vin, Seen())

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        partitions = [
            TopicPartition(topics.STATUS, p) for p in await topic_partitions(self.bootstrap, topics.STATUS)
        ]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
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
        seen.events.append(event)
        at = event.time.timestamp()
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

        Prints progress every ``every`` seconds; raises TimeoutError naming VINs
        still open and where they stand.
        """
        done = condition or (lambda watch: not watch.unsettled())
        began = last = time.monotonic()
        while not done(self):
            now = time.monotonic()
            if now - began > timeout:
                raise TimeoutError(f"not {what} after {timeout:.0f}s: {self.describe_open()}")
            if now - last >= every:
                self.out(f"  {now - began:5.0f}s  {self.progress()}")
                last = now
            await asyncio.sleep(0.2)
        return time.monotonic() - began

    def progress(self) -> str:
        counts = self.counts()
        parts = ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
        return f"{len(self.expected) - len(self.unsettled())}/{len(self.expected)} settled ({parts})"

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

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
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


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Figures:
    builds: int
    archived: int
    other: Counter[str]
    seconds: float
    per_second: float
    publish_to_archived: tuple[float, float]
    received_to_archived: tuple[float, float]

    def lines(self) -> list[str]:
        p50, p99 = self.publish_to_archived
        r50, r99 = self.received_to_archived
        others = ", ".join(f"{state} {n}" for state, n in sorted(self.other.items())) or "none"
        return [
            f"builds published                {self.builds}",
            f"archived                        {self.archived}   (other outcomes: {others})",
            f"first publish to last archive   {self.seconds:.1f} s",
            f"throughput                      {self.per_second:.1f} builds archived per second",
            f"publish to archived             median {p50:.2f} s   p99 {p99:.2f} s",
            f"received to archived            median {r50:.2f} s   p99 {r99:.2f} s",
        ]


def figures(published: Mapping[str, float], watch: StatusWatch) -> Figures:
    archived = {vin: s for vin, s in watch.seen.items() if vin in published and s.archived_at is not None}
    if not archived:
        raise RuntimeError("no build was archived: nothing to measure")
    first = min(published.values())
    last = max(s.archived_at for s in archived.values() if s.archived_at is not None)
    latency = [s.archived_at - published[vin] for vin, s in archived.items() if s.archived_at]
    inside = [s.archived_at - s.received_at for s in archived.values() if s.archived_at and s.received_at]
    other = Counter(
        s.state.value if s.state else "unseen" for vin, s in watch.seen.items() if vin not in archived
    )
    seconds = last - first
    return Figures(
        builds=len(published),
        archived=len(archived),
        other=other,
        seconds=seconds,
        per_second=len(archived) / seconds if seconds > 0 else float("inf"),
        publish_to_archived=(statistics.median(latency), percentile(latency, 0.99)),
        received_to_archived=(statistics.median(inside), percentile(inside, 0.99)) if inside else (0, 0),
    )


# --- the command -----------------------------------------------------------------------------


def fresh_tag(rng: random.Random) -> str:
    """A VIN tag the sample generator never writes (its model-year codes are T and V)."""
    return rng.choice([c for c in VIN_ALPHABET if c not in "TV"])


async def post_approvals(settings: ServiceSettings) -> int:
    """The sample approval master data, posted to intake as the type-approval team does."""
    import httpx

    from services.intake.samples import catalogue
    from shared.auth import Role, load_tokens

    tokens = load_tokens(settings, dict(os.environ))
    if Role.TYPE_APPROVAL not in tokens:
        raise SystemExit(
            f"no type-approval token: set COC_TOKEN_TYPE_APPROVAL or run `coc stack up` ({settings.state_dir})"
        )
    approvals = [entry.approval for entries in catalogue().values() for entry in entries]
    body = json.dumps([a.model_dump(mode="json") for a in approvals]).encode()
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            f"{settings.intake_url}/v1/approvals",
            content=body,
            headers={
                "Authorization": f"Bearer {tokens[Role.TYPE_APPROVAL]}",
                "Content-Type": "application/json",
            },
        )
    if response.status_code != 202:
        raise SystemExit(f"POST /v1/approvals: {response.status_code} {response.text[:500]}")
    return len(approvals)


async def run(builds_wanted: int, seed: int | None, timeout: float, rate: float = 0.0) -> Figures:
    from services.intake.samples import generate

    settings = ServiceSettings()
    rng = random.Random(seed)
    sample_seed = rng.randrange(1 << 30)
    builds = retag_all(generate(builds_wanted, sample_seed, 0.0).builds, fresh_tag(rng))
    say(f"stack: Kafka {settings.kafka_bootstrap}, intake {settings.intake_url}")
    say(f"{await post_approvals(settings)} approvals posted to intake")
    await asyncio.sleep(1)  # validation reads the approvals topic: let it see them first
    expected = {build.vin: build.revision for build in builds}
    async with watching(settings.kafka_bootstrap, expected) as watch:
        pace = f" at {rate:g} per second" if rate > 0 else " at once"
        say(f"publishing {len(builds)} builds{pace} (sample seed {sample_seed}) to {topics.BUILDS}")
        published = await publish_builds(settings.kafka_bootstrap, builds, say, rate)
        took = await watch.wait(at_rest, timeout, "archived", every=5)
        say(f"at rest {took:.1f}s after the last publish")
    return figures(published, watch)


def at_rest(watch: StatusWatch, quiet_s: float = 30) -> bool:
    """Every VIN archived; or each has a state and no event came for ``quiet_s`` (nothing more will)."""
    open_vins = [vin for vin, s in watch.seen.items() if s.state is not State.ARCHIVED]
    if not open_vins:
        return True
    if any(watch.seen[vin].state is None for vin in open_vins):
        return False
    latest = max((s.events[-1].time.timestamp() for s in watch.seen.values() if s.events), default=0)
    return time.time() - latest > quiet_s


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--builds", type=int, default=2000, help="builds to publish (default 2000)")
    parser.add_argument("--seed", type=int, help="seed of the sample data and VIN tag (default: random)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the pipeline")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="builds published per second, as a line produces them (default: all at once)",
    )
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error("--rate must be 0 (all at once) or more")
    try:
        result = asyncio.run(run(args.builds, args.seed, args.timeout, args.rate))
    except TimeoutError as exc:
        print(f"bench.pipeline: {exc}", file=sys.stderr)
        return 1
    print("\n".join(["", "end-to-end pipeline", *result.lines()]))
    return 0 if result.archived == result.builds else 1


if __name__ == "__main__":
    sys.exit(main())
