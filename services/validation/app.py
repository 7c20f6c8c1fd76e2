"""Validation: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from services.validation import subscribers
from services.validation.adapters import approvals
from services.validation.adapters.pending import COLLECTION, PendingStore
from services.validation.rules import ApprovalTable
from services.validation.settings import RuleSettings
from shared import topics
from shared.contracts.events import ValidatedRecord
from shared.ivi import IviSchema
from shared.mongo import database, make_client
from shared.service import Service


def create_app(settings: RuleSettings | None = None) -> FastAPI:
    settings = settings or RuleSettings()
    service = Service("validation", settings)
    client = make_client(settings)
    runtime = subscribers.Runtime(
        table=ApprovalTable(IviSchema.load(settings.xsd_path())),
        pending=PendingStore(database(client, settings)[COLLECTION]),
    )

    async def start() -> None:
        await runtime.pending.setup()
        for approval in await approvals.read_all(settings):
            runtime.table.add(approval)

    service.on_start.append(start)
    service.attach_mongo(client)
    subscribers.register(service, runtime)
    service.declare(topics.VALIDATED, ValidatedRecord)
    return service.asgi()
