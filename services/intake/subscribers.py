"""Intake's Kafka entry: build records an MES publishes straight to coc.builds.v1."""

from __future__ import annotations

from services.intake.acceptance import accept, identity_of, key_mismatch
from services.intake.facets import BuildFacets
from services.intake.settings import IntakeSettings
from shared import topics
from shared.contracts import BuildRecord
from shared.contracts.events import AcceptedRecord, State, now
from shared.stage import Emitter, Stage, Unusable


def register(
    stage: Stage[IntakeSettings],
    facets: BuildFacets,
    topic: str = topics.BUILDS,
    group: str = "coc-intake",  # the group's name since the first release: its offsets stay valid
) -> None:
    """Builds from the MES topic (``topic`` and ``group`` other than these only in tests of their own)."""

    async def on_build(build: BuildRecord) -> None:
        """A build the MES published: accepted (a broken one is kept in the DLQ with a `rejected` status).

        Broken is also a value its certificate element refuses (``facets``): the
        dead letter names the field and the schema's reason.
        """
        reason = facets.reason(build)
        if reason is not None:
            raise Unusable(reason, vin=build.vin, revision=build.revision, build=build, state=State.REJECTED)
        await forward(stage.emitter, accept(build, now()))

    stage.consume(
        topic,
        BuildRecord,
        on_build,
        broken_state=State.REJECTED,
        identity=identity_of,
        check_key=key_mismatch,
        group=group,
    )


async def forward(emitter: Emitter, record: AcceptedRecord) -> None:
    """Publish an accepted record and say it was received."""
    build = record.build
    await emitter.send(topics.ACCEPTED, record, key=build.vin, correlation_id=record.record_id)
    await emitter.status(vin=build.vin, revision=build.revision, state=State.RECEIVED, build=build)
