"""Archive: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from fastapi import FastAPI

from services.archive import base_certificates, routes, subscribers
from services.archive.adapters.deliveries import DeliveryReceipts
from services.archive.adapters.store import CertificateStore
from services.archive.settings import ArchiveSettings
from shared.auth import load_tokens
from shared.ivi import IviSchema
from shared.stage import Stage

log = logging.getLogger(__name__)


def create_app(settings: ArchiveSettings | None = None) -> FastAPI:
    stage = Stage("archive", settings or ArchiveSettings())
    store = CertificateStore(stage.database())
    stage.on_start.append(store.setup)
    backfill: list[asyncio.Task[None]] = []

    async def named_heads() -> None:
        try:
            log.info("archive: %d heads now name their approval", await store.backfill())
        except Exception:  # the database away: the heads stay as they are until the next start
            log.warning(
                "archive: heads not named after their approval; tried again at the next start", exc_info=True
            )

    async def start_backfill() -> None:  # heads kept before they named their approval, in the background
        backfill.append(asyncio.create_task(named_heads()))

    async def stop_backfill() -> None:
        for task in backfill:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    stage.on_start.append(start_backfill)
    stage.on_stop.append(stop_backfill)
    subscribers.register(stage, store)
    app = stage.asgi()
    deliveries = DeliveryReceipts(stage.settings.delivery_url, load_tokens(stage.settings, dict(os.environ)))
    stage.on_stop.append(deliveries.close)
    app.include_router(routes.router(store, stage.authenticator(), deliveries.of_vin))
    # Imported base certificates of multistage vehicles (services.archive.base_certificates).
    bases = base_certificates.BaseCertificates(stage.database())
    schema = IviSchema.load(stage.settings.xsd_path())
    app.include_router(base_certificates.router(bases, stage.authenticator(), schema))
    return app
