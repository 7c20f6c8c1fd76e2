"""Delivery: wiring only."""

from __future__ import annotations

import asyncio
import logging
import os

from fastapi import FastAPI

from services.delivery import routes, subscribers
from services.delivery.adapters.connectors import Archive, ConfigurationError, Connector, connectors
from services.delivery.adapters.ledger import Ledger
from services.delivery.settings import DeliverySettings
from shared.auth import Role, load_tokens
from shared.stage import CannotStart, Stage


def create_app(settings: DeliverySettings | None = None) -> FastAPI:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per call to an authority
    stage = Stage("delivery", settings or DeliverySettings())
    ledger = Ledger(stage.database())
    token = load_tokens(stage.settings, dict(os.environ)).get(Role.VIEWER)
    archive = Archive(stage.settings.archive_url, token)
    made: dict[str, Connector] = {}
    sender = subscribers.Sender(stage, ledger, made)
    running: list[asyncio.Task[None]] = []

    def check_destinations() -> None:
        try:
            made.update(connectors(stage.settings))
        except ConfigurationError as exc:
            raise CannotStart(str(exc)) from None

    async def start_sender() -> None:
        if not made:
            check_destinations()
        running.append(asyncio.create_task(sender.run()))

    async def stop_sender() -> None:
        for task in running:
            task.cancel()
        await sender.stop()
        for connector in made.values():
            await connector.close()
        await archive.close()

    stage.preflight.append(check_destinations)
    stage.on_start.append(start_sender)
    stage.on_stop.append(stop_sender)
    subscribers.register(stage, ledger, archive, sender)
    app = stage.asgi()
    app.include_router(routes.router(ledger, stage.authenticator()))
    return app
