"""A record given up on after intake is said failed at its own revision, so the status read model shows it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from devkit.samples import generate
from services.status.fold import fold
from shared import topics
from shared.contracts import BuildRecord
from shared.contracts.events import AcceptedRecord, DeadLetter, State, StatusEvent
from shared.identity import IDENTITY_BODY_MAX, key_identity
from shared.settings import ServiceSettings
from shared.stage import Stage
from tests.unit.shared.runtime_fakes import Recording, record

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def build() -> BuildRecord:
    first = generate(1, seed=13, defect_share=0.0).builds[0]
    return first.model_copy(update={"revision": 3})


def accepted(build: BuildRecord) -> AcceptedRecord:
    return AcceptedRecord(record_id=build.record_id, received_at=dt.datetime.now(dt.UTC), build=build)


def test_the_revision_is_read_from_the_record_id_or_the_build_of_the_body(build: BuildRecord) -> None:
    body = accepted(build).model_dump_json().encode()
    assert key_identity(body, build.vin.lower()) == (build.vin, 3)
    only_build = json.dumps({"build": {"vin": build.vin, "revision": 3}}).encode()
    assert key_identity(only_build, build.vin) == (build.vin, 3)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe not json",
        b"[" * 100_000 + b"]" * 100_000,
        b'"just a string"',
        b'{"record_id": "OTHERVIN:3"}',
        b'{"record_id": "VIN:\xc2\xb2"}',
        b'{"record_id": "VIN:99999999999999999999"}',
        b'{"build": {"vin": "VIN", "revision": true}}',
        b'{"build": {"vin": "VIN", "revision": 0}}',
        b'{"vin": "VIN", "revision": 3}',  # a review: its revision is not the record's failure
        b'{"record_id": "VIN:3", "x": "' + b"a" * IDENTITY_BODY_MAX + b'"}',
    ],
    ids=[
        "not-utf8",
        "nested-100000",
        "not-an-object",
        "another-vin",
        "unicode-digit",
        "beyond-max-revision",
        "bool",
        "zero",
        "bare-revision",
        "too-large-to-parse",
    ],
)
def test_a_body_that_names_no_usable_revision_of_the_key_gives_revision_0(body: bytes) -> None:
    assert key_identity(body, "vin") == ("VIN", 0)


async def test_a_record_whose_output_is_too_large_for_the_broker_shows_failed_at_its_revision(
    build: BuildRecord,
) -> None:
    stage = Stage("validation", ServiceSettings())

    async def too_large(_record: AcceptedRecord) -> None:
        raise MessageSizeTooLargeError("The message is 2502530 bytes when serialized")

    stage.consume(topics.ACCEPTED, AcceptedRecord, too_large)
    stage.emitter.outbound = sent = Recording()
    (loop,) = stage.loops
    body = accepted(build).model_dump_json().encode()
    await loop.mode.handle([record(topics.ACCEPTED, body, key=build.vin.encode())], loop)

    assert [topic for topic, *_ in sent.sent] == [topics.dlq(topics.ACCEPTED), topics.STATUS]
    (letter,) = sent.models(topics.dlq(topics.ACCEPTED), DeadLetter)
    (event,) = sent.models(topics.STATUS, StatusEvent)
    assert "too large for the broker" in letter.reason
    assert (event.state, event.revision, event.record_id) == (State.FAILED, 3, build.record_id)
    received = fold(None, event.model_copy(update={"stage": "intake", "state": State.RECEIVED}))
    shown = fold(received, event)
    assert shown is not None
    assert (shown.state, shown.stage, shown.revision) == (State.FAILED, "validation", 3)
