"""Render: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from services.render import subscribers
from services.render.adapters.versions import VersionNumbers
from services.render.settings import RenderSettings
from shared.ivi import IviSchema
from shared.stage import Stage


def create_app(settings: RenderSettings | None = None) -> FastAPI:
    stage = Stage("render", settings or RenderSettings())
    versions = VersionNumbers(stage.database())
    stage.on_start.append(versions.setup)
    subscribers.register(stage, IviSchema.load(stage.settings.xsd_path()), versions)
    return stage.asgi()
