"""Status: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from services.status import routes, subscribers
from services.status.adapters.records import COLLECTION, StatusStore
from services.status.settings import StatusSettings
from shared.stage import Stage


def create_app(settings: StatusSettings | None = None) -> FastAPI:
    stage = Stage("status", settings or StatusSettings())
    store = StatusStore(stage.database()[COLLECTION])
    stage.on_start.append(store.setup)
    subscribers.register(stage, store)
    app = stage.asgi()
    app.include_router(routes.router(store, stage.authenticator()))
    return app
