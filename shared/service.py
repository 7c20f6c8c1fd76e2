"""What every service's ``app.py`` uses: the FastAPI app with /healthz around a Kafka broker.

A service is one FastAPI application (HTTP endpoints, /healthz) whose lifespan
starts and stops its FastStream Kafka broker and whatever clients the service
needs. Nothing is created at import time: ``create_app`` builds it all.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Response
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel
from pymongo import AsyncMongoClient

from shared import topics
from shared.admin import ensure_topics
from shared.contracts.events import DeadLetter, State, StatusEvent
from shared.messaging import ContractError, make_broker, parse_as, raw_body, subscriber_options
from shared.mongo import MongoDoc
from shared.pipeline import Backoff, Emitter, record_of
from shared.settings import ServiceSettings
from shared.telemetry import make_tracer_provider

Hook = Callable[[], Awaitable[None]]
HealthCheck = Callable[[], Awaitable[bool]]


def instance_name(stage: str) -> str:
    """Who emitted an event: the stage, the host and the process."""
    return f"{stage}@{socket.gethostname()}:{os.getpid()}"


def port_of(stage: str, settings: ServiceSettings) -> int:
    return settings.http_port or settings.port_of(stage)


class Service:
    """The parts of one service process, assembled by its ``create_app``."""

    def __init__(self, stage: str, settings: ServiceSettings) -> None:
        self.stage = stage
        self.settings = settings
        self.instance = instance_name(stage)
        self.tracer_provider: TracerProvider = make_tracer_provider(settings, stage)
        self.broker: KafkaBroker = make_broker(
            settings,
            client_id=f"coc-{stage}",
            middlewares=[KafkaTelemetryMiddleware(tracer_provider=self.tracer_provider)],
        )
        self.on_start: list[Hook] = []
        self.on_stop: list[Hook] = []
        self.health_checks: list[HealthCheck] = [self._broker_alive]
        self._declared: set[str] = set()
        self.declare(topics.STATUS, StatusEvent)

    def attach_mongo(self, client: AsyncMongoClient[MongoDoc]) -> None:
        """Close the client when the service stops, and count its ping in /healthz."""

        async def alive() -> bool:
            await client.admin.command("ping")
            return True

        self.on_stop.append(client.close)
        self.health_checks.append(alive)

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
            await self.broker.stop()
            for hook in reversed(self.on_stop):
                await hook()
            self.tracer_provider.shutdown()

    def asgi(self, **fastapi_options: Any) -> FastAPI:
        app = FastAPI(title=f"coc {self.stage}", lifespan=self.lifespan, **fastapi_options)
        app.state.service = self

        @app.get("/healthz", tags=["health"])
        async def healthz(response: Response) -> dict[str, Any]:
            checks = [await _safe(check) for check in self.health_checks]
            healthy = all(checks)
            response.status_code = 200 if healthy else 503
            return {"service": self.instance, "healthy": healthy}

        return app

    def declare(self, topic: str, model: type[BaseModel], description: str | None = None) -> None:
        """Document an outgoing topic with its contract in the AsyncAPI document.

        Handlers publish through the broker directly; this only gives the
        channel its payload schema (the subscribers read raw bytes, so the
        schema comes from here).
        """
        if topic in self._declared:
            return
        self._declared.add(topic)
        self.broker.publisher(
            topic,
            title=f"{topic}:publish",
            schema=model,
            description=description or (model.__doc__ or "").strip(),
        )

    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI document of this service's topics, generated from its subscribers."""
        spec = AsyncAPI(self.broker, title=f"coc {self.stage}", version="1.0.0", schema_version="3.0.0")
        return dict(spec.to_specification().to_jsonable())


async def _safe(check: HealthCheck) -> bool:
    try:
        return await check()
    except Exception:  # a failing health check is an unhealthy answer, not a crash
        return False


Handler = Callable[[Any, KafkaMessage], Awaitable[None]]


def consume(
    service: Service,
    topic: str,
    model: type[BaseModel],
    handler: Handler,
    *,
    group: str | None = None,
    broken_state: State | None = State.FAILED,
) -> None:
    """Subscribe ``handler`` to ``topic`` with the delivery rules of the design.

    - the instances of a stage share the work in one consumer group;
    - the body is parsed with its contract; one that breaks it goes to the DLQ
      with the reason and a ``failed`` (or ``rejected``) status when the key
      (the VIN) is readable (``broken_state=None``: no status, for the status
      service itself), and the partition goes on;
    - any other exception is a transient fault: wait (growing backoff), then
      let it propagate so the message is delivered again, uncommitted.
    """
    emitter = Emitter(service.broker, service.instance, service.stage)
    backoff = Backoff(service.settings.retry_initial_s, service.settings.retry_max_s)
    service.declare(topics.dlq(topic), DeadLetter)
    options = subscriber_options(group or f"coc-{service.stage}.{topic}", service.settings.consumers)

    @service.broker.subscriber(topic, decoder=raw_body, title=f"{service.stage}:{topic}", **options)
    async def on_message(body: bytes, msg: KafkaMessage) -> None:
        try:
            parsed = parse_as(model, body)
        except ContractError as exc:
            await reject(emitter, msg, str(exc), broken_state)
            return
        try:
            await handler(parsed, msg)
        except Exception:
            await backoff.failed()
            raise
        backoff.succeeded()


async def reject(emitter: Emitter, msg: KafkaMessage, reason: str, state: State | None) -> None:
    """Keep an unusable message in the DLQ and say so on the status topic when the VIN is known."""
    await emitter.dead_letter(msg, reason)
    if state is None:
        return
    record = record_of(msg)
    vin = record.key.decode("utf-8", "replace").strip() if record.key else ""
    if vin:
        await emitter.status(vin=vin, revision=0, state=state, reason=reason)
