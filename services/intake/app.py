"""Intake: wiring only."""

from __future__ import annotations

import os

from fastapi import FastAPI

from services.intake import routes, subscribers
from services.intake.settings import IntakeSettings
from shared import topics
from shared.auth import Authenticator, load_tokens
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import AcceptedRecord, DeadLetter, Review
from shared.service import Service


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    service = Service("intake", settings)
    subscribers.register(service)
    service.declare(topics.BUILDS, BuildRecord, "Build records as the factory MES publishes them (key = VIN)")
    service.declare(topics.dlq(topics.BUILDS), DeadLetter)
    service.declare(topics.ACCEPTED, AcceptedRecord)
    service.declare(topics.APPROVALS, Approval, "Approval master data, compacted, key = approval key")
    service.declare(topics.REVIEWS, Review)
    app = service.asgi()
    app.include_router(routes.router(service, Authenticator(load_tokens(settings, dict(os.environ)))))
    return app
