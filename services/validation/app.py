"""Validation: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from services.validation import routes, subscribers
from services.validation.adapters import approvals, policies
from services.validation.adapters.pending import COLLECTION, PendingStore
from services.validation.policy import PolicyTable
from services.validation.rules import ApprovalTable
from services.validation.settings import ValidationSettings
from shared.ivi import IviSchema
from shared.stage import Stage


def create_app(settings: ValidationSettings | None = None) -> FastAPI:
    stage = Stage("validation", settings or ValidationSettings())
    runtime = subscribers.Runtime(
        table=ApprovalTable(IviSchema.load(stage.settings.xsd_path())),
        pending=PendingStore(stage.database()[COLLECTION]),
        policies=PolicyTable(stage.settings.policy()),
    )

    async def start() -> None:
        await runtime.pending.setup()
        for approval in await approvals.read_all(stage.settings):
            runtime.table.add(approval)
        # Before any record is decided: a group's policy on the topic beats the environment's.
        runtime.policies.load(await policies.read_all(stage.settings))

    stage.on_start.append(start)
    subscribers.register(stage, runtime)
    app = stage.asgi()
    app.include_router(routes.router(runtime.pending, stage.authenticator()))
    return app
