"""Status: wiring only."""

from __future__ import annotations

import os

from fastapi import FastAPI

from services.status import routes, subscribers
from services.status.adapters.records import COLLECTION, StatusStore
from services.status.settings import StatusSettings
from shared.auth import Authenticator, load_tokens
from shared.mongo import database, make_client
from shared.stage import Stage


def create_app(settings: StatusSettings | None = None) -> FastAPI:
    stage = Stage("status", settings or StatusSettings())
    client = make_client(stage.settings)
    store = StatusStore(database(client, stage.settings)[COLLECTION])
    stage.on_start.append(store.setup)
    stage.attach_mongo(client)
    subscribers.register(stage, store)
    app = stage.asgi()
    app.include_router(routes.router(store, Authenticator(load_tokens(stage.settings, dict(os.environ)))))
    return app
