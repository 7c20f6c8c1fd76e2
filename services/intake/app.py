"""Intake: wiring only."""

from __future__ import annotations

import os

from fastapi import FastAPI

from services.intake import routes, subscribers
from services.intake.settings import IntakeSettings
from shared.auth import Authenticator, load_tokens
from shared.service import Service


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    service = Service("intake", settings)
    subscribers.register(service)
    app = service.asgi()
    app.include_router(routes.router(service, Authenticator(load_tokens(settings, dict(os.environ)))))
    return app
