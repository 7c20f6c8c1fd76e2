"""Intake: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake import routes, subscribers
from services.intake.settings import IntakeSettings
from shared import topics
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import AcceptedRecord, Review
from shared.stage import Stage


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    stage = Stage("intake", settings or IntakeSettings())
    # What intake publishes, from Kafka and from HTTP. Builds are published by the MES itself;
    # declared here so the AsyncAPI document shows the public input contract as a channel.
    stage.publisher(topics.BUILDS, BuildRecord, "Build records as the factory MES publishes them (key = VIN)")
    stage.publisher(topics.ACCEPTED, AcceptedRecord)
    stage.publisher(topics.APPROVALS, Approval, "Approval master data, compacted, key = approval key")
    stage.publisher(topics.REVIEWS, Review)
    subscribers.register(stage)
    app = stage.asgi()
    app.include_router(routes.router(stage, stage.authenticator()))
    return app
