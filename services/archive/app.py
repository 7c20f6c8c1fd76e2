"""Archive: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from services.archive import routes, subscribers
from services.archive.adapters.store import CertificateStore
from services.archive.settings import ArchiveSettings
from shared.stage import Stage


def create_app(settings: ArchiveSettings | None = None) -> FastAPI:
    stage = Stage("archive", settings or ArchiveSettings())
    store = CertificateStore(stage.database())
    stage.on_start.append(store.setup)
    subscribers.register(stage, store)
    app = stage.asgi()
    app.include_router(routes.router(store, stage.authenticator()))
    return app
