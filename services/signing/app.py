"""Signing: wiring only. The key is read in the lifespan, once, and handed to the seal."""

from __future__ import annotations

from fastapi import FastAPI

from services.signing import subscribers
from services.signing.seal import Seal
from services.signing.settings import SigningSettings
from shared import topics
from shared.contracts.events import Document
from shared.service import Service


def create_app(settings: SigningSettings | None = None) -> FastAPI:
    settings = settings or SigningSettings()
    service = Service("signing", settings)
    holder = subscribers.SealHolder()

    async def load_seal() -> None:
        holder.seal = Seal.from_pem(*settings.load_seal_pems())

    service.on_start.append(load_seal)
    subscribers.register(service, holder)
    service.declare(
        topics.SIGNED, Document, "Sealed IVI 2.0 documents with their SHA-256 and the seal's fingerprint"
    )
    return service.asgi()
