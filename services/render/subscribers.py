"""Render's subscriber: validated records in, unsigned IVI 2.0 documents out."""

from __future__ import annotations

import hashlib

from services.render.adapters.versions import VersionNumbers
from services.render.document import RenderError, render
from services.render.settings import RenderSettings
from shared import topics
from shared.contracts.events import ApprovalPacks, Document, Evidence, State, ValidatedRecord
from shared.contracts.seals import holder_of
from shared.ivi import IviSchema
from shared.stage import Stage, Unusable


def register(stage: Stage[RenderSettings], schema: IviSchema, versions: VersionNumbers) -> None:
    packs = ApprovalPacks()

    async def on_validated(record: ValidatedRecord) -> None:
        build = record.build
        number = await versions.number_for(record.record_id, build.vin)
        try:
            xml = render(build, record.approval, version_number=number, schema=schema)
        except RenderError as exc:
            raise Unusable(
                f"cannot render {record.record_id}: {exc}",
                vin=build.vin,
                revision=build.revision,
                build=build,
            ) from None
        document = Document(
            record_id=record.record_id,
            vin=build.vin,
            revision=build.revision,
            version_number=number,
            xml=xml.decode("utf-8"),
            sha256=hashlib.sha256(xml).hexdigest(),
            evidence=Evidence.of(build, record.approval, record.release, len(xml), packs.of(record.approval)),
            seal_holder=holder_of(record.approval),  # signing seals with this holder's seal
        )
        await stage.emitter.send(topics.RENDERED, document, key=build.vin, correlation_id=record.record_id)
        await stage.emitter.status(vin=build.vin, revision=build.revision, state=State.RENDERED, build=build)

    stage.publisher(topics.RENDERED, Document, "Unsigned IVI 2.0 documents with their SHA-256")

    async def claim_numbers(firsts: list[tuple[ValidatedRecord, str | None]]) -> None:
        await versions.claim_firsts([(record.record_id, record.build.vin) for record, _trace in firsts])

    stage.consume(topics.VALIDATED, ValidatedRecord, on_validated, prepare=claim_numbers)
