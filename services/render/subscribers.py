"""Render's subscriber: validated records in, unsigned IVI 2.0 documents out."""

from __future__ import annotations

import hashlib

from faststream.kafka import KafkaMessage

from services.render.adapters.versions import VersionNumbers
from services.render.document import RenderError, render
from shared import topics
from shared.contracts.events import Document, State, ValidatedRecord
from shared.ivi import IviSchema
from shared.pipeline import Emitter
from shared.service import Service, consume


def register(service: Service, schema: IviSchema, versions: VersionNumbers) -> None:
    emitter = Emitter(service.broker, service.instance, service.stage)

    async def on_validated(record: ValidatedRecord, msg: KafkaMessage) -> None:
        build = record.build
        number = await versions.number_for(record.record_id, build.vin)
        try:
            xml = render(build, record.approval, version_number=number, schema=schema)
        except RenderError as exc:
            await emitter.dead_letter(msg, f"cannot render {record.record_id}: {exc}")
            await emitter.status(
                vin=build.vin, revision=build.revision, state=State.FAILED, build=build, reason=str(exc)
            )
            return
        document = Document(
            record_id=record.record_id,
            vin=build.vin,
            revision=build.revision,
            version_number=number,
            xml=xml.decode("utf-8"),
            sha256=hashlib.sha256(xml).hexdigest(),
        )
        await emitter.send(topics.RENDERED, document, key=build.vin, correlation_id=record.record_id)
        await emitter.status(vin=build.vin, revision=build.revision, state=State.RENDERED, build=build)

    consume(service, topics.VALIDATED, ValidatedRecord, on_validated)
