"""Archive: wiring only."""

from __future__ import annotations

import os

from fastapi import FastAPI

from services.archive import routes, subscribers
from services.archive.adapters.store import CertificateStore
from services.archive.settings import ArchiveSettings
from shared.auth import Authenticator, load_tokens
from shared.mongo import database, make_client
from shared.stage import Stage


def create_app(settings: ArchiveSettings | None = None) -> FastAPI:
    stage = Stage("archive", settings or ArchiveSettings())
    client = make_client(stage.settings)
    store = CertificateStore(database(client, stage.settings))
    stage.on_start.append(store.setup)
    stage.attach_mongo(client)
    subscribers.register(stage, store)
    app = stage.asgi()
    app.include_router(routes.router(store, Authenticator(load_tokens(stage.settings, dict(os.environ)))))
    return app
