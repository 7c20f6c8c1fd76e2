"""A service process: one ``Stage``, assembled by the service's ``create_app``.

A stage is a FastAPI application (its HTTP endpoints and /healthz) whose
lifespan starts and stops what the service needs: its producer, one
``ConsumerLoop`` per subscription (``shared.runtime``), and the clients its
hooks make. Nothing is created at import time.

The stage publishes only to the topics it declares (``publisher``) and reads
through one of three calls, each a consume mode of ``shared.runtime``:

- ``consume``: a stage's own topic in batches, VINs overlapped, one commit
  (``VinBatches``), or, with ``broadcast``, a table every instance reads whole
  (``TableReader``);
- ``consume_batches``: parsed batches to one handler (``Feed``);
- ``consume_held``: messages held between two writes of a fold (``HeldFold``).

All of them apply one delivery policy (``shared.runtime.delivery``). The topics
and contracts are declared on a FastStream broker too, which is never started:
it gives the AsyncAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Response
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.specification import AsyncAPI
from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase

from shared import topics
from shared.auth import Authenticator, load_tokens
from shared.contracts.events import DeadLetter, State, StatusEvent
from shared.held import HoldPolicy
from shared.identity import IDENTITY_BODY_MAX, Identity, key_identity
from shared.kafka import ensure_topics, make_broker, make_producer
from shared.mongo import MongoDoc, database, make_client
from shared.observability.http import HttpMetrics
from shared.observability.metrics import CONTENT_TYPE_LATEST, StageMetrics
from shared.runtime.batches import Prepare, VinBatches
from shared.runtime.consumer import ConsumerLoop, Mode, Subscription
from shared.runtime.delivery import Backoff, Delivery, KeyCheck, Unusable
from shared.runtime.emitter import Emitter, owner_of
from shared.runtime.feed import Feed
from shared.runtime.fold import HeldFold
from shared.runtime.health import HEALTH_ANSWERS, Flow, HealthCheck, checked, stuck
from shared.runtime.partitions import HeldPartitions
from shared.runtime.process import instance_name, port_of, settle_collector
from shared.runtime.table import TableReader
from shared.settings import ServiceSettings
from shared.telemetry import Tracing

__all__ = [
    "IDENTITY_BODY_MAX",
    "Backoff",
    "CannotStart",
    "Emitter",
    "Flow",
    "HeldPartitions",
    "Stage",
    "Unusable",
    "key_identity",
    "owner_of",
    "port_of",
    "settle_collector",
]

log = logging.getLogger(__name__)
# How long a hand-over of partitions waits for the tables to be read to their end.
TABLES_READ_S = 30.0
S = TypeVar("S", bound=ServiceSettings)
M = TypeVar("M", bound=BaseModel)
Hook = Callable[[], Awaitable[None]]


class CannotStart(Exception):
    """A service's configuration cannot work (a missing or unusable key, say): said in one line, before it runs."""


class Stage(Generic[S]):
    """The parts of one service process, assembled by its ``create_app``."""

    def __init__(self, name: str, settings: S) -> None:
        self.name = name
        self.settings = settings
        self.instance = instance_name(name)
        self.tracing = Tracing.of(settings, name)
        self.tracer_provider = self.tracing.provider
        self.tracer = self.tracing.tracer  # an HTTP request's own span (intake)
        self.metrics = StageMetrics(name)  # served on /metrics (shared.observability)
        self.broker: KafkaBroker = make_broker(settings, client_id=f"coc-{name}")  # declarations only
        self.on_start: list[Hook] = []
        self.on_stop: list[Hook] = []
        self.on_stopping: list[Hook] = []  # run before the consumers stop (they are still there)
        # Checks run before the server starts (``python -m services``); each raises CannotStart.
        self.preflight: list[Callable[[], None]] = []
        self.flows: list[Flow] = []  # each subscription's movement, for /healthz
        self.health_checks: list[HealthCheck] = [self._broker_alive]
        self.loops: list[ConsumerLoop] = []
        self.producer: AIOKafkaProducer | None = None
        self._publishers: dict[str, DefaultPublisher] = {}
        self.emitter = Emitter(name, self.instance, self.tracing, self.publisher_of)
        self.publisher(topics.STATUS, StatusEvent)

    # -- outgoing ---------------------------------------------------------------------------

    def publisher(self, topic: str, model: type[BaseModel], description: str | None = None) -> None:
        """Declare an outgoing topic with its contract: the emitter sends only to declared topics."""
        if topic in self._publishers:
            return
        self._publishers[topic] = self.broker.publisher(
            topic,
            title=f"{topic}:publish",
            schema=model,
            description=description or (model.__doc__ or "").strip(),
        )

    @property
    def published_topics(self) -> frozenset[str]:
        """Every topic the stage may send to (its ACLs in deploy/kafka/acls.json hold to these)."""
        return frozenset(self._publishers)

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
        settle: Callable[[], Awaitable[None]] | None = None,
        held: HeldPartitions | None = None,
    ) -> None:
        """Subscribe ``handler`` to ``topic``, one message at a time, with the delivery policy.

        The instances of a stage share the work in one consumer group (``group``,
        by default ``coc-<stage>.<topic>``), in batches (``VinBatches``); with
        ``broadcast`` every instance reads the whole topic from its beginning (a
        table each instance keeps, such as the approvals). A message that breaks
        the contract gets ``broken_state`` on the status topic for the VIN
        ``identity`` reads (None: no status, for topics not keyed by VIN).
        ``check_key`` says why a parsed message does not fit its key (then it is
        kept in the DLQ like a broken one), or None. ``prepare`` (consumer groups
        only) is given each batch's first usable message of each VIN first
        (``shared.runtime.batches.Prepare``). ``settle`` (``broadcast`` only) is
        awaited after each batch's rows were handled: work the rows leave for
        once per batch (``TableReader``). ``held`` (consumer groups only) is told
        which partitions the process holds (``shared.runtime.partitions``).
        """
        delivery = self._delivery(topic, model, broken_state, identity, check_key)
        flow = self._flow(topic)
        mode: Mode
        if broadcast:
            subscription = Subscription(topic, group_id=None, poll_ms=self.settings.consume_wait_ms)
            mode = TableReader(delivery, handler, tracing=self.tracing, flow=flow, settle=settle)
        else:
            subscription = Subscription(
                topic,
                group_id=group or self._group(topic),
                max_records=self.settings.consume_batch,
                poll_ms=self.settings.consume_wait_ms,
                gather_ms=self.settings.consume_gather_ms,
                ahead=self.settings.consume_ahead,
                commit_every_ms=self.settings.consume_commit_ms,
            )
            mode = VinBatches(
                delivery,
                handler,
                emitter=self.emitter,
                tracing=self.tracing,
                flow=flow,
                overlap=self.settings.consume_overlap,
                prepare=prepare,
                held=held,
            )
        self._subscribe(subscription, mode, model)

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
        """Subscribe ``handler`` to batches of up to ``max_records`` parsed messages (``Feed``).

        With ``live`` every instance reads the topic from its end, in no group (a
        live feed). With ``gather_ms`` the broker holds each fetch until that long
        has passed or a megabyte has come: a reader that may lag that much (a
        board) then costs the broker a few fetches a second instead of one per
        message or two.
        """
        delivery = self._delivery(topic, model, None, key_identity, None)
        subscription = Subscription(
            topic,
            group_id=None if live else self._group(topic),
            from_start=not live,
            max_records=max_records,
            poll_ms=timeout_ms,
            gather_ms=gather_ms,
        )
        self._subscribe(subscription, Feed(delivery, handler, flow=self._flow(topic)), model)

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
        """Subscribe ``write`` to ``topic``'s messages, held until ``policy`` says they are due (``HeldFold``).

        Returns the subscription's flow (``behind`` counts the held messages too).
        """
        delivery = self._delivery(topic, model, None, key_identity, None)
        flow = self._flow(topic)
        subscription = Subscription(
            topic,
            group_id=self._group(topic),
            max_records=max_records,
            poll_ms=timeout_ms,
            gather_ms=gather_ms,
            commit=False,
        )
        fold = HeldFold(delivery, write, policy=policy, flow=flow, gather_ms=gather_ms)
        self._subscribe(subscription, fold, model)
        return flow

    def _delivery(
        self,
        topic: str,
        model: type[M],
        broken_state: State | None,
        identity: Identity,
        check_key: KeyCheck[M] | None,
    ) -> Delivery[M]:
        self.publisher(topics.dlq(topic), DeadLetter)
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)
        return Delivery(
            model,
            self.emitter,
            backoff,
            broken_state=broken_state,
            identity=identity,
            check_key=check_key,
            meter=self.metrics.topic(topic),
        )

    def _subscribe(self, subscription: Subscription, mode: Mode, model: type[BaseModel]) -> None:
        meter = self.metrics.topic(subscription.topic)
        loop = ConsumerLoop(self.settings, subscription, mode, client_id=f"coc-{self.name}", meter=meter)
        self.metrics.consumer_lag(subscription.topic, loop.lags)
        self.loops.append(loop)
        self._declare_reading(subscription, model)

    def _declare_reading(self, subscription: Subscription, model: type[BaseModel]) -> None:
        """The subscription in the AsyncAPI document, with its contract (the broker never runs it)."""

        async def reads(message: BaseModel) -> None:
            """Consumed by the stage's ``ConsumerLoop``; declared here for the AsyncAPI document."""

        reads.__annotations__ = {"message": model, "return": None}
        declared = self.broker.subscriber(
            subscription.topic,
            group_id=subscription.group_id,
            title=f"{self.name}:{subscription.topic}",
            description=(model.__doc__ or "").strip(),
        )
        declared(reads)

    def _flow(self, topic: str) -> Flow:
        flow = Flow(topic)
        self.flows.append(flow)
        return flow

    def _group(self, topic: str) -> str:
        """The stage's consumer group of ``topic``: ``coc-<stage>.<topic>``, one consumer per process."""
        return f"coc-{self.name}.{topic}"

    async def tables_read(self, within_s: float = TABLES_READ_S) -> bool:
        """Wait until each table the stage reads whole has handled its rows as of now; False if not within ``within_s``.

        Before a hand-over of partitions (``HeldPartitions.ready``): the records
        there are decided against tables caught up. Past the bound the hand-over
        goes on (logged): a row read later is decided by the table's own handler,
        the partitions being held by then.
        """
        deadline = asyncio.get_running_loop().time() + within_s
        for loop in self.loops:
            if isinstance(loop.mode, TableReader):
                left = deadline - asyncio.get_running_loop().time()
                if not await loop.mode.read_to_now(loop, left):
                    log.warning("%s: not read to its end within %.0fs", loop.subscription.topic, within_s)
                    return False
        return True

    def stuck(self) -> list[str]:
        """The subscriptions failing, or in one batch, for longer than ``stall_after_s``."""
        return stuck(self.flows, self.settings.stall_after_s)

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

    async def ensure_topics(self) -> None:
        """Make the pipeline's topics and those the stage reads that do not exist yet."""
        await ensure_topics(self.settings, [loop.subscription.topic for loop in self.loops])

    async def start(self, *, topics_made: bool = False) -> None:
        """Start the producer, then every subscription's consumer loop (making the topics first unless made)."""
        if not topics_made:
            await self.ensure_topics()
        self.producer = make_producer(self.settings, client_id=f"coc-{self.name}")
        await self.producer.start()
        self.emitter.outbound = self.producer
        for loop in self.loops:
            await loop.start()

    async def stop(self) -> None:
        """Stop the consumer loops (each finishes its batch and writes what it holds), then the producer."""
        await asyncio.gather(*(loop.stop() for loop in self.loops))
        if self.producer is not None:
            await self.producer.stop()  # sends still queued are flushed first
            self.emitter.outbound = self.producer = None

    async def _broker_alive(self) -> bool:
        """A metadata request answered, by a consumer of the stage or else by its producer."""
        for loop in self.loops:
            if loop.consumer is not None:
                return await loop.topics()
        if self.producer is None:
            return False
        await self.producer.partitions_for(topics.STATUS)
        return True

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.ensure_topics()
        for hook in self.on_start:
            await hook()
        await self.start(topics_made=True)
        try:
            yield
        finally:
            for hook in self.on_stopping:
                await hook()
            await self.stop()
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
            answered, stuck_now = await checked(self.health_checks), self.stuck()
            healthy = answered and not stuck_now
            response.status_code = 200 if healthy else 503
            return {"service": self.instance, "healthy": healthy, "stuck": stuck_now}

        @app.get("/metrics", tags=["health"], include_in_schema=False)
        async def metrics() -> Response:
            """The process's metrics in Prometheus's text format; like /healthz, no token (docs/operations.md)."""
            return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

        app.add_middleware(HttpMetrics, metrics=self.metrics)
        return app

    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI document of this service's topics: its subscribers and its publishers."""
        spec = AsyncAPI(self.broker, title=f"coc {self.name}", version="1.0.0", schema_version="3.0.0")
        return dict(spec.to_specification().to_jsonable())
