"""Intake: wiring only."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from services.intake import routes, subscribers
from services.intake.facets import BuildFacets
from services.intake.settings import IntakeSettings
from shared import topics
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import AcceptedRecord, Review
from shared.ivi import IviSchema
from shared.stage import Stage


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    stage = Stage("intake", settings or IntakeSettings())
    # What intake publishes, from Kafka and from HTTP. Builds are published by the MES itself;
    # declared here so the AsyncAPI document shows the public input contract as a channel.
    stage.publisher(topics.BUILDS, BuildRecord, "Build records as the factory MES publishes them (key = VIN)")
    stage.publisher(topics.ACCEPTED, AcceptedRecord)
    stage.publisher(topics.APPROVALS, Approval, "Approval master data, compacted, key = approval key")
    stage.publisher(topics.REVIEWS, Review)
    # The facets of each per-vehicle value, from the official schema read once (design, "Certificate data").
    facets = BuildFacets.of(IviSchema.load(stage.settings.xsd_path()))
    subscribers.register(stage, facets)
    app = stage.asgi()
    app.include_router(routes.router(stage, stage.authenticator(), facets))
    app.openapi = partial(openapi_with_bodies, app)  # type: ignore[method-assign]
    return app


def openapi_with_bodies(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the schemas of the request bodies the routes read themselves."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        _, found = models_json_schema(
            [(model, "validation") for model in routes.BODY_MODELS],
            ref_template="#/components/schemas/{model}",
        )
        document.setdefault("components", {}).setdefault("schemas", {}).update(found.get("$defs", {}))
        app.openapi_schema = document
    return app.openapi_schema
