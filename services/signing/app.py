"""Signing: wiring only. The key is read in the lifespan, once, and handed to the seal."""

from __future__ import annotations

from fastapi import FastAPI

from services.signing import subscribers
from services.signing.adapters.keys import SealHolder, load_seal
from services.signing.settings import SigningSettings
from shared.stage import Stage


def create_app(settings: SigningSettings | None = None) -> FastAPI:
    stage = Stage("signing", settings or SigningSettings())
    holder = SealHolder()

    async def read_seal() -> None:
        holder.seal = load_seal(stage.settings)

    stage.on_start.append(read_seal)
    subscribers.register(stage, holder)
    return stage.asgi()
