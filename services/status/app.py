"""Status: wiring only."""

from __future__ import annotations

import os

from fastapi import FastAPI

from services.status import routes, subscribers
from services.status.adapters.records import COLLECTION, StatusStore
from shared.auth import Authenticator, load_tokens
from shared.mongo import database, make_client
from shared.service import Service
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    service = Service("status", settings)
    client = make_client(settings)
    store = StatusStore(database(client, settings)[COLLECTION])

    async def start() -> None:
        await store.setup()

    async def stop() -> None:
        await client.close()

    async def mongo_alive() -> bool:
        await client.admin.command("ping")
        return True

    service.on_start.append(start)
    service.on_stop.append(stop)
    service.health_checks.append(mongo_alive)
    subscribers.register(service, store)
    app = service.asgi()
    app.include_router(routes.router(store, Authenticator(load_tokens(settings, dict(os.environ)))))
    return app
