"""Signing: wiring only. The key is read here, once, and handed to the seal."""

from __future__ import annotations

from fastapi import FastAPI

from services.signing import subscribers
from services.signing.seal import Seal
from services.signing.settings import SigningSettings
from shared.service import Service


def create_app(settings: SigningSettings | None = None) -> FastAPI:
    settings = settings or SigningSettings()  # paths come from COC_SEAL_KEY and COC_SEAL_CERT
    password = settings.seal_key_password.get_secret_value().encode() if settings.seal_key_password else None
    seal = Seal.from_pem(settings.seal_key.read_bytes(), settings.seal_cert.read_bytes(), password)
    service = Service("signing", settings)
    subscribers.register(service, seal)
    return service.asgi()
