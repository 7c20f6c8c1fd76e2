"""The stage runtime: what every service is made of besides its own work.

A service is one ``Stage``: a FastAPI application (its HTTP endpoints and
/healthz) whose lifespan starts and stops a FastStream Kafka broker and the
clients the service needs. Nothing is created at import time; each service's
``create_app`` assembles its stage.

The stage publishes only to the topics it declares as FastStream publishers
(``Stage.publisher``), so the AsyncAPI document lists exactly the topics and
contracts that run; the emitter sends the records those publishers would make
through the broker's own producer (``Emitter._publish``). It consumes through
``Stage.consume``, which applies the delivery rules of the design to every
subscriber alike:

- the body is parsed with its contract; one that breaks it goes to
  ``<topic>.dlq`` with the reason, a status event says so when the VIN is
  readable, and the partition goes on;
- a handler that finds a message it can never use raises ``Unusable``: same path;
- any other exception is a transient fault (broker or database away): wait
  with growing backoff, then let it propagate so the message is delivered
  again, uncommitted.

A stage's own topics are consumed in batches (``consume_batch`` records at a
time): the messages of one VIN in their order, different VINs overlapped (at
most ``consume_overlap`` at once), every publish of the batch sent without
waiting for its acknowledgement, then all acknowledgements awaited together,
then one offset commit. A transient fault anywhere rewinds the whole batch;
every stage is idempotent, so what was done before the fault is done again to
no effect. Each record is handled in its own trace, taken from its headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import gc
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from bson.errors import InvalidDocument
from fastapi import FastAPI, Response
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.specification import AsyncAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel
from pydantic_core import to_json
from pymongo.asynchronous.database import AsyncDatabase

from shared import topics
from shared.auth import Authenticator, load_tokens
from shared.contracts import Finding, Owner
from shared.contracts.builds import MAX_REVISION, BuildRecord
from shared.contracts.events import DeadLetter, State, StatusEvent, now
from shared.held import Held, HoldPolicy
from shared.kafka import (
    ContractError,
    Record,
    broadcast_options,
    ensure_topics,
    envelope_headers,
    gather_options,
    group_options,
    held_group_options,
    key_text,
    make_broker,
    parse_as,
    producer_of,
    raw_records,
    release,
    rewind,
    wait_for_records,
)
from shared.mongo import MongoDoc, database, make_client
from shared.settings import ServiceSettings
from shared.telemetry import Tracing, current_trace_id

log = logging.getLogger(__name__)
S = TypeVar("S", bound=ServiceSettings)
M = TypeVar("M", bound=BaseModel)
Hook = Callable[[], Awaitable[None]]
HealthCheck = Callable[[], Awaitable[bool]]
# A batch's work done once before its messages are handled (see Stage.consume): the first usable
# message of each VIN (key), with the trace id it came with.
Prepare = Callable[[list[tuple[M, str | None]]], Awaitable[object]]
# VIN and revision of a message that broke its contract, read from its bytes and its key.
Identity = Callable[[bytes, str], tuple[str, int]]
# Why a parsed message does not fit the key it came with (None: it fits).
KeyCheck = Callable[[M, str], str | None]
# A dead letter keeps this much of the value exactly (base64 makes it 4/3 larger), so it fits the
# broker's default message limit of 1 MB; the readable excerpt beside it is shorter.
DLQ_KEPT_BYTES = 600_000
DLQ_TEXT_BYTES = 2_000
KEY_TEXT_MAX = 200
REASON_MAX = 2_000
# A body read whole for its revision when its message is dead-lettered: every message the broker
# delivers with its default limit (1 MB); a larger one is not parsed, its revision stays unknown.
IDENTITY_BODY_MAX = 2_000_000
# Faults a retry cannot mend: the message goes to the DLQ at once instead of stalling its partition.
PERMANENT = (MessageSizeTooLargeError, OverflowError, InvalidDocument)
# How long /healthz waits for one check (they run together): a probe gets its answer within ~3 s.
HEALTH_CHECK_TIMEOUT_S = 2.0
HEALTH_ANSWERS: dict[int | str, dict[str, Any]] = {
    503: {"description": "The broker or the database does not answer, or a subscription is stuck (named)"},
}
# Keys (VINs) whose held messages go to one call of a held subscription's writer: bounds what is parsed
# at once (1,000 vehicles of five status events: about 6.5 MB).
HELD_KEYS_PER_WRITE = 1_000
QUIET_S = 1.0  # nothing new this long: a held subscription writes what it holds
HELD_STOP_S = 10.0  # how long a stopping process writes what it holds before it leaves it to the broker
# The acknowledgements a batch waits for before its offsets are committed (unset: await each send).
_unconfirmed: ContextVar[list[asyncio.Future[Any]] | None] = ContextVar("coc_unconfirmed", default=None)


def settle_collector(young: int) -> None:
    """Tune the cycle collector of a service process, once its app is built.

    The ~90,000 objects of the imports and the app (FastAPI, FastStream,
    pydantic's schemas, lxml's schema) live as long as the process, yet every
    full collection walked them again: 130-170 ms each, 1.9 CPU s of signing's
    and 3.0 of render's in a 20,000-build run. Frozen, they are left out. A
    batch makes and drops objects by the hundred thousand, nearly all freed by
    their counts; collecting the youngest generation every ``young`` new
    objects instead of every 700 spares most of the passes over those that
    live through a batch.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


def instance_name(stage: str) -> str:
    """Who emitted an event: the stage, the host and the process."""
    return f"{stage}@{socket.gethostname()}:{os.getpid()}"


def port_of(stage: str, settings: ServiceSettings) -> int:
    return settings.http_port or settings.port_of(stage)


def key_identity(body: bytes, key: str) -> tuple[str, int]:
    """The VIN is the key; the revision is the one the body names for that VIN, else 0 (not known).

    A record given up on after intake must be said failed at its own revision:
    the status fold ignores revision 0 for a VIN it already holds, so a failure
    said at 0 would leave the record ``received`` for ever. Every contract after
    intake names the revision: ``record_id`` ("VIN:revision") or ``build.revision``.
    """
    vin = key.upper()
    return vin, revision_in(body, vin)


def revision_in(body: bytes, vin: str) -> int:
    """The revision of ``vin`` that a JSON body names, or 0 when it is too large, garbage or silent.

    A bare ``revision`` is not read: a review carries one, and a review that
    breaks its contract does not make the record it names fail.
    """
    data = _json_object(body)
    record_id = data.get("record_id")
    if isinstance(record_id, str):
        named, _, number = record_id.rpartition(":")
        if named.upper() == vin and number.isascii() and number.isdigit() and len(number) <= 7:
            return _revision(int(number))
    build = data.get("build")
    if isinstance(build, dict) and str(build.get("vin", "")).upper() == vin:
        return _revision(build.get("revision"))
    return 0


def _json_object(body: bytes) -> dict[str, Any]:
    if len(body) > IDENTITY_BODY_MAX:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested deeper than Python's stack
        return {}
    return data if isinstance(data, dict) else {}


def _revision(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_REVISION:
        return value
    return 0


@dataclass
class Flow:
    """How one subscription is moving: since when its current batch runs, since when it keeps failing."""

    topic: str
    busy_since: float | None = None
    failing_since: float | None = None
    behind: int | None = None  # records waiting on the broker after the last poll (batch subscriptions)

    def stuck(self, now: float, after_s: float) -> str | None:
        if self.failing_since is not None and now - self.failing_since > after_s:
            return f"{self.topic}: failing for {now - self.failing_since:.0f} s; its partition does not move"
        if self.busy_since is not None and now - self.busy_since > after_s:
            return f"{self.topic}: one batch running for {now - self.busy_since:.0f} s"
        return None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self.busy_since = time.monotonic()
        try:
            yield
        except BaseException:
            self.failing_since = self.failing_since or time.monotonic()
            raise
        else:
            self.failing_since = None
        finally:
            self.busy_since = None


@dataclass
class _HoldState:
    """What a held subscription keeps between its batches (``Stage.consume_held``)."""

    held: Held = field(default_factory=Held)
    broken: list[tuple[Record, Unusable]] = field(default_factory=list)  # for the DLQ with the next write
    epoch: int = 0  # moves when partitions are taken away: a write begun before then is not committed
    rewind_due: bool = False  # a failed commit's move back to the committed offsets is still to be done
    last_came: float = 0.0  # when the last record came: the topic is quiet after ``QUIET_S`` without one

    def drop(self) -> None:
        """Forget everything held (the broker still has it, uncommitted)."""
        self.held.take()
        self.broken.clear()
        self.epoch += 1


def _partition(record: Record) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


class _DropOnRevoke(ConsumerRebalanceListener):
    """Drops what a held subscription holds when its partitions are taken away (``consume_held``)."""

    def __init__(self, drop: Callable[[], None]) -> None:
        self.drop = drop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            self.drop()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class CannotStart(Exception):
    """A service's configuration cannot work (a missing or unusable key, say): said in one line, before it runs."""


class Unusable(Exception):
    """A message no retry can make usable: kept in the DLQ with ``reason``, never redelivered.

    ``state`` (failed by default, None for none) is said on the status topic
    for ``vin`` and ``revision``; ``build`` adds the group and build id.
    """

    def __init__(
        self,
        reason: str,
        *,
        vin: str = "",
        revision: int = 0,
        build: BuildRecord | None = None,
        state: State | None = State.FAILED,
    ) -> None:
        super().__init__(reason)
        self.reason, self.vin, self.revision, self.build, self.state = reason, vin, revision, build, state


class Stage(Generic[S]):
    """The parts of one service process, assembled by its ``create_app``."""

    def __init__(self, name: str, settings: S) -> None:
        self.name = name
        self.settings = settings
        self.instance = instance_name(name)
        self.tracing = Tracing.of(settings, name)
        self.tracer_provider: TracerProvider = self.tracing.provider
        self.tracer = self.tracing.tracer  # an HTTP request's own span (intake)
        # No telemetry middleware on the broker: it made two spans per publish, 0.2 ms of CPU
        # each time, ten times per certificate. The trace context is carried by the emitter
        # (``Emitter.send``) and each consumed record is handled in its own span (``consume``).
        self.broker: KafkaBroker = make_broker(settings, client_id=f"coc-{name}")
        self.on_start: list[Hook] = []
        self.on_stop: list[Hook] = []
        self.on_stopping: list[Hook] = []  # run before the broker stops (its consumers still there)
        # Checks run before the server starts (``coc service``); each raises CannotStart.
        self.preflight: list[Callable[[], None]] = []
        self.flows: list[Flow] = []  # each subscription's movement, for /healthz
        self.health_checks: list[HealthCheck] = [self._broker_alive]
        self._publishers: dict[str, DefaultPublisher] = {}
        self.emitter = Emitter(self)
        self.publisher(topics.STATUS, StatusEvent)

    # -- outgoing ---------------------------------------------------------------------------

    def publisher(self, topic: str, model: type[BaseModel], description: str | None = None) -> None:
        """Declare an outgoing topic with its contract: the publisher the emitter sends through."""
        if topic in self._publishers:
            return
        self._publishers[topic] = self.broker.publisher(
            topic,
            title=f"{topic}:publish",
            schema=model,
            description=description or (model.__doc__ or "").strip(),
        )

    def publisher_of(self, topic: str) -> DefaultPublisher:
        try:
            return self._publishers[topic]
        except KeyError:
            raise LookupError(f"stage {self.name} has declared no publisher for {topic}") from None

    # -- incoming ---------------------------------------------------------------------------

    def consume(
        self,
        topic: str,
        model: type[M],
        handler: Callable[[M], Awaitable[None]],
        *,
        broken_state: State | None = State.FAILED,
        identity: Identity = key_identity,
        broadcast: bool = False,
        group: str | None = None,
        check_key: KeyCheck[M] | None = None,
        prepare: Prepare[M] | None = None,
    ) -> None:
        """Subscribe ``handler`` to ``topic``, one message at a time, with the delivery rules above.

        The instances of a stage share the work in one consumer group; with
        ``broadcast`` every instance reads the whole topic from its beginning
        (a table each instance keeps, such as the approvals). A message that
        breaks the contract gets ``broken_state`` on the status topic for the
        VIN ``identity`` reads (None: no status, for topics not keyed by VIN).
        ``group`` names the consumer group when it is not ``coc-<stage>.<topic>``.
        ``check_key`` says why a parsed message does not fit its key (then it is kept
        in the DLQ like a broken one), or None. A message whose handler's output is
        too large for the broker is kept in the DLQ at once: no retry can change that.

        ``prepare`` (consumer groups only) is given, before any message of a batch
        is handled, the first message of each key (VIN) that fits its contract
        and its key, with the trace id it came with: the place for one bulk
        database request for the VINs' first records instead of one request per
        message. It may only do what the handlers would do anyway, idempotently
        (a batch can come again); its fault is transient, like a handler's.
        """
        backoff = self._backoff()
        self.publisher(topics.dlq(topic), DeadLetter)
        if not broadcast:
            self._consume_in_batches(
                topic,
                model,
                handler,
                broken_state,
                identity,
                group or f"coc-{self.name}.{topic}",
                backoff,
                check_key,
                prepare,
            )
            return

        @self.broker.subscriber(
            topic, decoder=raw_records, title=f"{self.name}:{topic}", **broadcast_options()
        )
        async def on_message(records: Any) -> None:
            (record,) = records
            body = record.value or b""
            with self._span(record):
                try:
                    parsed = parse_as(model, body)
                except ContractError as exc:
                    vin, revision = identity(body, key_text(record)) if broken_state else ("", 0)
                    await self._keep(
                        record, Unusable(str(exc), vin=vin, revision=revision, state=broken_state)
                    )
                    return
                try:
                    await handler(parsed)
                except Unusable as exc:
                    await self._keep(record, exc)
                except Exception:
                    await backoff.failed()
                    raise
                else:
                    backoff.succeeded()

    def _span(self, record: Record) -> contextlib.AbstractContextManager[trace.Span]:
        """The consumer span a record is handled in, continuing the trace it arrived with."""
        return self.tracing.consumer_span(f"{record.topic} process", record.headers or ())

    def _consume_in_batches(
        self,
        topic: str,
        model: type[M],
        handler: Callable[[M], Awaitable[None]],
        broken_state: State | None,
        identity: Identity,
        group: str,
        backoff: Backoff,
        check_key: KeyCheck[M] | None,
        prepare: Prepare[M] | None,
    ) -> None:
        """``consume`` for a consumer group: batches, VINs overlapped, one commit (module docstring)."""
        overlap = max(1, self.settings.consume_overlap)

        def read(record: Record) -> M | Unusable:
            """The message as its contract, or why it is unusable (the contract, or its key)."""
            body = record.value or b""
            try:
                parsed = parse_as(model, body)
            except ContractError as exc:
                reason = str(exc)
            else:
                reason = (check_key(parsed, key_text(record)) if check_key else None) or ""
                if not reason:
                    return parsed
            vin, revision = identity(body, key_text(record)) if broken_state else ("", 0)
            return Unusable(reason, vin=vin, revision=revision, state=broken_state)

        async def one(record: Record, parsed: M | Unusable) -> None:
            with self._span(record):
                if isinstance(parsed, Unusable):
                    await self._keep(record, parsed)
                    return
                body = record.value or b""
                try:
                    await handler(parsed)
                except Unusable as exc:
                    await self._keep(record, exc)
                except PERMANENT as exc:
                    # Permanent: the same input makes the same output, which no retry can send or
                    # store (too large for the broker, a number or document the database refuses).
                    vin, revision = identity(body, key_text(record)) if broken_state else ("", 0)
                    what = (
                        "too large for the broker" if isinstance(exc, MessageSizeTooLargeError) else "refused"
                    )
                    await self._keep(
                        record,
                        Unusable(
                            f"what this message makes is {what} ({type(exc).__name__}: {str(exc)[:300]}); kept here",
                            vin=vin,
                            revision=revision,
                            state=broken_state,
                        ),
                    )

        flow = self._flow(topic)

        subscriber = self.broker.subscriber(
            topic,
            batch=True,
            max_records=self.settings.consume_batch,
            batch_timeout_ms=self.settings.consume_wait_ms,
            decoder=raw_records,
            title=f"{self.name}:{topic}",
            **group_options(group),  # one consumer: the overlap is across the VINs of its batch
            **gather_options(self.settings.consume_gather_ms),
        )
        wait_for_records(subscriber, self.settings.consume_wait_ms)

        @subscriber
        async def on_batch(records: Any) -> None:
            try:
                with flow.batch():
                    await handle_batch(records)
            finally:
                release(records)

        async def handle_batch(records: tuple[Record, ...]) -> None:
            by_key: dict[bytes | None, list[tuple[Record, M | Unusable]]] = {}
            firsts: dict[bytes | None, tuple[M, str | None]] = {}
            for record in records:
                parsed = read(record)
                by_key.setdefault(record.key, []).append((record, parsed))
                if not isinstance(parsed, Unusable) and record.key not in firsts:
                    firsts[record.key] = (parsed, self.tracing.trace_id_in(record.headers or ()))
            limit = asyncio.Semaphore(overlap)

            async def in_order(records: list[tuple[Record, M | Unusable]]) -> None:
                async with limit:
                    for record, parsed in records:  # a fault stops the VIN here: its later messages wait
                        await one(record, parsed)

            if prepare is not None and firsts:
                try:
                    await prepare(list(firsts.values()))
                except Exception:
                    await backoff.failed()
                    raise
            unconfirmed: list[asyncio.Future[Any]] = []
            token = _unconfirmed.set(unconfirmed)
            try:
                outcomes = await asyncio.gather(
                    *(in_order(r) for r in by_key.values()), return_exceptions=True
                )
            finally:
                _unconfirmed.reset(token)
            outcomes += await asyncio.gather(*unconfirmed, return_exceptions=True)
            faults = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            if faults:
                await backoff.failed()
                raise faults[0]
            backoff.succeeded()

    def consume_batches(
        self,
        topic: str,
        model: type[M],
        handler: Callable[[list[M]], Awaitable[None]],
        *,
        max_records: int,
        timeout_ms: int = 500,
        live: bool = False,
        gather_ms: int = 0,
    ) -> None:
        """Subscribe ``handler`` to batches of up to ``max_records`` parsed messages.

        A message that breaks the contract only goes to the DLQ (no status: the
        batch consumers read the status topic, and would read their own event
        back); the rest of the batch goes on. A transient fault leaves the whole
        batch uncommitted, so the handler must be idempotent. With ``live`` every
        instance reads the topic from its end, in no group (a live feed).

        With ``gather_ms`` the broker holds each fetch until that long has
        passed or ``shared.kafka.GATHER_BYTES`` have come: a reader that may lag that much
        (a board, a read model folded every second) then costs the broker a
        few fetches a second instead of one per message or two.
        """
        backoff = self._backoff()
        self.publisher(topics.dlq(topic), DeadLetter)
        flow = self._flow(topic)

        subscriber = self._batch_subscriber(
            topic,
            max_records,
            timeout_ms,
            gather_ms,
            broadcast_options(from_start=False) if live else self._group(topic),
        )
        wait_for_records(subscriber, timeout_ms, behind=lambda n: setattr(flow, "behind", n))

        @subscriber
        async def on_batch(records: Any) -> None:
            try:
                with flow.batch():
                    parsed: list[M] = []
                    for record in records:
                        try:
                            parsed.append(parse_as(model, record.value or b""))
                        except ContractError as exc:
                            await self._keep(record, Unusable(str(exc), state=None))
                    try:
                        await handler(parsed)
                    except Exception:
                        await backoff.failed()
                        raise
                    backoff.succeeded()
            finally:
                release(records)

    def consume_held(
        self,
        topic: str,
        model: type[M],
        write: Callable[[list[M]], Awaitable[object]],
        *,
        policy: HoldPolicy,
        max_records: int,
        timeout_ms: int = 500,
        gather_ms: int = 0,
    ) -> Flow:
        """Subscribe ``write`` to ``topic``'s messages, held until ``policy`` says they are due (``shared.held``).

        For a fold whose cost is per document written, not per message. Each
        message is checked against its contract as it comes; a broken one is
        kept for the DLQ. When the held messages are due, the broken ones go to
        the DLQ, the rest are handed to ``write`` ``HELD_KEYS_PER_WRITE`` keys at
        a time (every message of a key in one call, in order), and only then are
        their offsets committed. A fault is retried in place with growing
        backoff (the partition waits meanwhile; ``write`` must be idempotent, as
        a part may be written twice). A crash, or partitions taken away by a
        rebalance, leaves the held messages uncommitted: they are read again,
        by this process or the partition's next owner. A failed commit moves
        the partitions back to their committed offsets for the same reason.
        Returns the subscription's flow (``behind`` counts the held messages too).
        """
        backoff = self._backoff()
        self.publisher(topics.dlq(topic), DeadLetter)
        flow = self._flow(topic)
        state, lock = _HoldState(), asyncio.Lock()
        held = state.held

        subscriber = self._batch_subscriber(
            topic,
            max_records,
            timeout_ms,
            gather_ms,
            held_group_options(f"coc-{self.name}.{topic}", _DropOnRevoke(state.drop)),
        )

        async def write_held(consumer: AIOKafkaConsumer) -> None:
            taken, dead, at, began = held.take(), state.broken[:], state.epoch, time.monotonic()
            state.broken.clear()
            parts, done = taken.parts(HELD_KEYS_PER_WRITE), 0
            while state.epoch == at:  # else the partitions were taken away: the broker keeps it all
                try:
                    while dead:
                        await self._keep(*dead[0])
                        dead.pop(0)
                    while done < len(parts):
                        events = [parse_as(model, body) for body in taken.bodies(parts[done])]
                        await write(events)
                        done += 1
                        if flow.behind is not None:  # the board's "not counted yet" moves as it is written
                            flow.behind = max(0, flow.behind - len(events))
                except Exception:
                    flow.failing_since = flow.failing_since or time.monotonic()
                    await backoff.failed()
                    continue
                flow.failing_since = None
                backoff.succeeded()
                if state.epoch != at:
                    return
                try:
                    await consumer.commit(taken.offsets)
                except Exception as exc:  # a rebalance or the broker away: read it again from the commit
                    log.warning("%s: commit after a write failed (%s); reading again", topic, exc)
                    state.drop()
                    await rewind_now(consumer)
                    return
                log.info(
                    "%s: wrote %d messages of %d keys, held %.1f s, in %.1f s",
                    topic,
                    taken.count,
                    len(taken.groups),
                    began - taken.since,
                    time.monotonic() - began,
                )
                return

        async def rewind_now(consumer: AIOKafkaConsumer) -> None:
            state.rewind_due = True
            with contextlib.suppress(Exception):  # the broker away: tried again before the next batch
                await rewind(consumer)
                state.rewind_due = False

        # A poll may come back empty under a flood too (the broker gathers for ``gather_ms``):
        # the topic is quiet when nothing came for two such waits.
        quiet_s = max(QUIET_S, 2 * gather_ms / 1000)

        async def on_quiet(consumer: AIOKafkaConsumer) -> None:
            async with lock:
                now = time.monotonic()
                if state.rewind_due:
                    await rewind_now(consumer)
                elif now - state.last_came >= quiet_s and (policy.due(held, now, quiet=True) or state.broken):
                    with flow.batch():
                        await write_held(consumer)

        wait_for_records(
            subscriber,
            timeout_ms,
            behind=lambda n: setattr(flow, "behind", n + held.count),
            quiet=on_quiet,
        )

        @subscriber
        async def on_batch(records: Any) -> None:
            consumer = subscriber.consumer
            try:
                async with lock:
                    if state.rewind_due:  # these records came from where a failed commit left off
                        await rewind_now(consumer)
                        return
                    now = state.last_came = time.monotonic()
                    for record in records:
                        body = record.value or b""
                        try:  # checked now, for the DLQ; kept as bytes and parsed again when written (2 us)
                            parse_as(model, body)
                        except ContractError as exc:
                            state.broken.append((copy.copy(record), Unusable(str(exc), state=None)))
                            held.add(_partition(record), record.offset, record.key, None, now)
                        else:
                            held.add(_partition(record), record.offset, record.key, body, now)
                    if consumer is not None and policy.due(held, time.monotonic()):
                        with flow.batch():
                            await write_held(consumer)
            finally:
                release(records)

        async def write_before_stop() -> None:
            consumer = subscriber.consumer
            if consumer is None or not (held or state.broken):
                return

            async def locked() -> None:
                async with lock:  # a batch being written (or retried) finishes first, within the bound
                    await write_held(consumer)

            try:
                await asyncio.wait_for(locked(), HELD_STOP_S)
            except TimeoutError:
                log.warning("%s: held messages not written before stop; read again at start", topic)

        self.on_stopping.append(write_before_stop)
        return flow

    def _batch_subscriber(
        self, topic: str, max_records: int, timeout_ms: int, gather_ms: int, options: dict[str, Any]
    ) -> Any:
        """A FastStream batch subscriber handing its handler the raw records (``consume_batches``, ``consume_held``)."""
        return self.broker.subscriber(
            topic,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=timeout_ms,
            decoder=raw_records,
            title=f"{self.name}:{topic}",
            **options,
            **gather_options(gather_ms),
        )

    def _flow(self, topic: str) -> Flow:
        flow = Flow(topic)
        self.flows.append(flow)
        return flow

    def stuck(self) -> list[str]:
        """The subscriptions failing, or in one batch, for longer than ``stall_after_s``."""
        now = time.monotonic()
        found = (flow.stuck(now, self.settings.stall_after_s) for flow in self.flows)
        return [reason for reason in found if reason]

    def _group(self, topic: str) -> dict[str, Any]:
        """The stage's consumer group of ``topic``: ``coc-<stage>.<topic>``, one consumer per process."""
        return group_options(f"coc-{self.name}.{topic}")

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)

    async def _keep(self, record: Record, unusable: Unusable) -> None:
        """Keep an unusable message in the DLQ, and say so on the status topic when the VIN is known."""
        await self.emitter.dead_letter(record, unusable.reason)
        if unusable.state is not None and unusable.vin:
            await self.emitter.status(
                vin=unusable.vin,
                revision=unusable.revision,
                state=unusable.state,
                build=unusable.build,
                reason=unusable.reason,
            )

    # -- the process ------------------------------------------------------------------------

    def database(self) -> AsyncDatabase[MongoDoc]:
        """The service's database; its client is closed when the service stops and pinged by /healthz."""
        client = make_client(self.settings)

        async def alive() -> bool:
            await client.admin.command("ping")
            return True

        self.on_stop.append(client.close)
        self.health_checks.append(alive)
        return database(client, self.settings)

    def authenticator(self) -> Authenticator:
        """Bearer tokens per role, from settings (``COC_TOKEN_*``)."""
        return Authenticator(load_tokens(self.settings, dict(os.environ)))

    async def _broker_alive(self) -> bool:
        return await self.broker.ping(timeout=2.0)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(self.settings)
        for hook in self.on_start:
            await hook()
        await self.broker.start()
        try:
            yield
        finally:
            for hook in self.on_stopping:
                await hook()
            await self.broker.stop()
            for hook in reversed(self.on_stop):
                await hook()
            self.tracer_provider.shutdown()

    def asgi(self, **fastapi_options: Any) -> FastAPI:
        app = FastAPI(title=f"coc {self.name}", lifespan=self.lifespan, **fastapi_options)
        app.state.stage = self

        @app.get("/healthz", tags=["health"], responses=HEALTH_ANSWERS)
        async def healthz(response: Response) -> dict[str, Any]:
            """200 when the broker and the database answer (within 2 s) and no subscription is stuck; else 503.

            ``stuck`` names each subscription that keeps failing (its partition does not
            move) or has run one batch for longer than ``COC_STALL_AFTER_S``.
            """
            checks = await asyncio.gather(*(_safe(check) for check in self.health_checks))
            stuck = self.stuck()
            healthy = all(checks) and not stuck
            response.status_code = 200 if healthy else 503
            return {"service": self.instance, "healthy": healthy, "stuck": stuck}

        return app

    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI document of this service's topics: its subscribers and its publishers."""
        spec = AsyncAPI(self.broker, title=f"coc {self.name}", version="1.0.0", schema_version="3.0.0")
        return dict(spec.to_specification().to_jsonable())


async def _safe(check: HealthCheck) -> bool:
    """The check's answer, False when it fails or does not answer within ``HEALTH_CHECK_TIMEOUT_S``.

    A database that hangs (its process stopped, a network that drops packets)
    never refuses a ping: without a bound /healthz would hang with it, and a
    probe would see no answer instead of a 503.
    """
    try:
        return await asyncio.wait_for(check(), HEALTH_CHECK_TIMEOUT_S)
    except Exception:  # a failing or silent health check is an unhealthy answer, not a crash
        return False


@dataclass(frozen=True)
class Emitter:
    """Publishes what a stage decided, through its declared publishers, with the envelope conventions.

    Status events go to coc.status.v1 (key = VIN, correlation id = record id,
    trace id of the record), dead letters to ``<topic>.dlq``. The pure logic
    of a stage returns what happened; the subscriber hands it here.
    """

    stage: Stage[Any]

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        """Publish a contract onward as this stage.

        Inside a batch the acknowledgement is not awaited here: the batch awaits
        them all before it commits (``Stage._consume_in_batches``).
        """
        if trace.get_current_span().get_span_context().is_valid:
            await self._publish(topic, model, key=key, correlation_id=correlation_id)
            return
        # Sent outside any record's trace (an HTTP client's approval, a test): it starts its own.
        with self.stage.tracing.producer_span(f"{topic} publish"):
            await self._publish(topic, model, key=key, correlation_id=correlation_id)

    async def _publish(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        """Send through the broker's own aiokafka producer, as the declared publisher would.

        The record is the one FastStream's publisher makes (the contract's JSON, headers
        ``content-type`` and ``correlation_id`` first, then the envelope's and the trace's),
        without its layers of commands and middlewares around each send: 7 µs of its 20
        per message, eleven messages per certificate.
        """
        publisher = self.stage.publisher_of(topic)  # only to a declared topic
        headers = envelope_headers(model, service=self.stage.name)
        self.stage.tracing.inject(headers)  # the trace rides on in the headers: the next stage continues it
        unconfirmed = _unconfirmed.get()
        producer = producer_of(self.stage.broker)
        if producer is None:  # FastStream's in-memory test broker: its publisher takes the message
            await publisher.publish(model, key=key.encode(), correlation_id=correlation_id, headers=headers)
            return
        sent = await producer.send(
            topic,
            value=to_json(model),
            key=key.encode(),
            headers=[
                ("content-type", b"application/json"),
                ("correlation_id", correlation_id.encode()),
                *((name, value.encode()) for name, value in headers.items()),
            ],
        )
        if unconfirmed is None:
            await sent
        else:
            unconfirmed.append(sent)

    async def status(
        self,
        *,
        vin: str,
        revision: int,
        state: State,
        build: BuildRecord | None = None,
        findings: Iterable[Finding] = (),
        reason: str | None = None,
        owner: Owner | None = None,
        destination: str | None = None,
    ) -> StatusEvent:
        found = tuple(findings)
        event = StatusEvent(
            vin=vin,
            record_id=f"{vin}:{revision}",
            revision=revision,
            build_id=build.build_id if build else None,
            vehicle_group=build.vehicle_group if build else None,
            stage=self.stage.name,
            state=state,
            findings=found,
            owner=owner or owner_of(found),
            reason=reason,
            time=now(),
            service=self.stage.instance,
            trace_id=current_trace_id(),
            destination=destination,
        )
        await self.send(topics.STATUS, event, key=vin, correlation_id=event.record_id)
        return event

    async def dead_letter(self, record: Record, reason: str) -> DeadLetter:
        """Keep one consumed record in ``<topic>.dlq`` with the reason and its bytes exactly.

        The value is kept whole as base64 up to ``DLQ_KEPT_BYTES`` (so the letter
        fits the broker's message limit); a larger one keeps its first bytes, with
        the size and SHA-256 of the whole. A readable excerpt goes beside it.
        """
        key = record.key.decode("utf-8", "replace")[:KEY_TEXT_MAX] if record.key else None
        raw = record.value or b""
        kept = raw[:DLQ_KEPT_BYTES]
        letter = DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            value=raw[:DLQ_TEXT_BYTES].decode("utf-8", "replace"),
            value_b64=base64.b64encode(kept).decode(),
            value_size=len(raw),
            value_kept=len(kept),
            value_cut=len(kept) < len(raw),
            value_sha256=hashlib.sha256(raw).hexdigest(),
            reason=reason[:REASON_MAX],
            service=self.stage.instance,
            time=now(),
        )
        await self.send(
            topics.dlq(record.topic),
            letter,
            key=key or "",
            correlation_id=f"{record.topic}:{record.partition}:{record.offset}",
        )
        return letter


def owner_of(findings: Sequence[Finding]) -> Owner | None:
    """The team that must act first: the owner of the first error, else of the first finding."""
    for finding in findings:
        if finding.severity == "error":
            return finding.owner
    return findings[0].owner if findings else None


class Backoff:
    """Waits longer after each consecutive failure; a success resets it.

    A handler whose transient fault (broker or database away) propagates has its
    message delivered again at once (the offset is not committed); waiting here
    first keeps that redelivery from spinning while the fault lasts.
    """

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0

    def succeeded(self) -> None:
        self.failures = 0

    async def failed(self) -> None:
        delay = min(self.max_s, self.initial_s * (2**self.failures))
        self.failures += 1
        await asyncio.sleep(delay)
