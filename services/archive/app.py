"""Archive: wiring only."""

from __future__ import annotations

import os

from fastapi import FastAPI

from services.archive import routes, subscribers
from services.archive.adapters.store import CertificateStore
from shared import topics
from shared.auth import Authenticator, load_tokens
from shared.contracts.events import ArchiveReceipt
from shared.mongo import database, make_client
from shared.service import Service
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    service = Service("archive", settings)
    client = make_client(settings)
    store = CertificateStore(database(client, settings))

    service.on_start.append(store.setup)
    service.attach_mongo(client)
    subscribers.register(service, store)
    service.declare(topics.ARCHIVED, ArchiveReceipt)
    app = service.asgi()
    app.include_router(routes.router(store, Authenticator(load_tokens(settings, dict(os.environ)))))
    return app
