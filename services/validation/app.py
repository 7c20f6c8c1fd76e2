"""Validation: wiring only. Here the adapters are chosen."""

from __future__ import annotations

from fastapi import FastAPI

from services.validation import routes, subscribers
from services.validation.adapters import approvals, masterdata, policies
from services.validation.adapters.clock import SystemClock
from services.validation.adapters.pending import COLLECTION, PendingStore
from services.validation.adapters.placements import MOVES, PlacementStore
from services.validation.handlers import Validation
from services.validation.policy import PolicyInForce
from services.validation.rules import ApprovalTable
from services.validation.settings import ValidationSettings
from shared import topics
from shared.ivi import IviSchema
from shared.stage import Backoff, HeldPartitions, Stage


def create_app(settings: ValidationSettings | None = None) -> FastAPI:
    stage = Stage("validation", settings or ValidationSettings())
    clock = SystemClock()
    table = ApprovalTable(IviSchema.load(stage.settings.xsd_path()))
    pending = PendingStore(stage.database()[COLLECTION], clock)
    placements = PlacementStore(stage.database()[COLLECTION], stage.database()[MOVES])
    in_force = PolicyInForce(stage.settings.policy())
    # The partitions of coc.records.accepted.v1 this instance holds: the records it decides again (of two, one).
    held = HeldPartitions(topics.ACCEPTED, ready=stage.tables_read)
    validation = Validation(
        approvals=table,
        pending=pending,
        policies=in_force,
        emitter=stage.emitter,
        clock=clock,
        plant_zone=stage.settings.plant_zone(),
        backoff=Backoff(stage.settings.retry_initial_s, stage.settings.retry_max_s),
        placements=placements,
        ownership=held,
    )
    held.on_assigned.append(validation.take_over)

    async def start() -> None:
        await pending.setup()
        for approval in await approvals.read_all(stage.settings):
            table.add(approval)
        # Before any record is decided: a group's policy on the topic beats the environment's.
        in_force.load(await policies.read_all(stage.settings))
        # And the plants and groups known: from here a build naming another one is blocked.
        in_force.load_master(await masterdata.read_all(stage.settings))
        await placements.setup()

    stage.on_start.append(start)
    subscribers.register(stage, validation, held)
    app = stage.asgi()
    app.include_router(routes.router(pending, stage.authenticator(), in_force))
    return app
