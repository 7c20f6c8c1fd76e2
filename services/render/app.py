"""Render: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from services.render import subscribers
from services.render.adapters.versions import VersionNumbers
from shared import topics
from shared.contracts.events import Document
from shared.ivi import IviSchema
from shared.mongo import database, make_client
from shared.service import Service
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    service = Service("render", settings)
    client = make_client(settings)
    versions = VersionNumbers(database(client, settings))
    service.on_start.append(versions.setup)
    service.attach_mongo(client)
    subscribers.register(service, IviSchema.load(settings.xsd_path()), versions)
    service.declare(topics.RENDERED, Document, "Unsigned IVI 2.0 documents with their SHA-256")
    return service.asgi()
