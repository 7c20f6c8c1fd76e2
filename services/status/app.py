"""Status: wiring only."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from services.status import routes, subscribers
from services.status.adapters.counters import run_recounts
from services.status.adapters.documents import COLLECTION
from services.status.adapters.store import StatusStore
from services.status.adapters.worklists import Worklists
from services.status.settings import StatusSettings
from shared import topics
from shared.observability.replication import ReplicationWatch
from shared.stage import Stage

REPLICATION_READ_S = 30.0  # how often the partitions' replication is read for /metrics


def create_app(settings: StatusSettings | None = None) -> FastAPI:
    stage = Stage("status", settings or StatusSettings())
    zone = stage.settings.plant_zone()  # the archived list's calendar
    store = StatusStore.on(stage.database()[COLLECTION], zone=zone)
    worklists = Worklists(store.listed, store.journal)
    recounts: list[asyncio.Task[None]] = []

    async def start_background() -> None:
        recounts.append(asyncio.create_task(run_recounts(store.counters, stage.settings.status_recount_s)))
        worklists.prime()

    async def stop_recounts() -> None:
        for task in recounts:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    stage.on_start.extend([store.setup, start_background])
    stage.on_stop.append(stop_recounts)
    subscribers.register(stage, store.records)
    folding = next(flow for flow in stage.flows if flow.topic == topics.STATUS)
    stage.metrics.read_model_lag.add(
        lambda: [((), float(folding.behind))] if folding.behind is not None else []
    )
    replication = ReplicationWatch(stage.settings, stage.metrics, REPLICATION_READ_S)
    stage.on_start.append(replication.start)
    stage.on_stop.append(replication.stop)
    app = stage.asgi()
    app.include_router(
        routes.router(
            store.records,
            store.counters,
            worklists,
            stage.authenticator(),
            lambda: folding.behind,
            archived=store.archived,
            zone=zone,
        )
    )
    return app
