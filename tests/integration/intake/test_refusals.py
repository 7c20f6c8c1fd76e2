"""Intake's refusals on the real broker: a build with markup or a value its certificate cannot carry.

Over Kafka the build is kept in the dead-letter topic with the reason naming the
field, and a `rejected` status says so; the next build is taken. Over HTTP the
whole app (the schema read at start) answers 422 naming the field. The MES topic
here is this test's own, read by intake's subscription in its own group.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from devkit.samples import generate
from services.intake import subscribers
from services.intake.app import create_app
from services.intake.facets import BuildFacets
from services.intake.settings import IntakeSettings
from shared import topics
from shared.auth import Role, env_name
from shared.contracts.events import AcceptedRecord, DeadLetter, State, StatusEvent
from shared.ivi import IviSchema
from shared.settings import CocSettings
from shared.stage import Stage
from tests.integration.shared.test_stage import publish_raw, read

pytestmark = pytest.mark.integration

MARKUP = '"><img src=x onerror=alert(1)>'


def sample(n: int, tag: str) -> dict[str, Any]:
    """Sample build ``n`` with a VIN of this test's own (its serial replaced by ``tag``)."""
    build = generate(n + 1, seed=27, defect_share=0.0).builds[n].model_dump(mode="json")
    return {**build, "vin": build["vin"][:11] + tag}


@pytest.fixture
async def intake(settings: CocSettings, unique: str, schema: IviSchema) -> AsyncIterator[str]:
    """Intake's MES subscription on a topic of this test; the topic's name."""
    topic = f"test.builds.{unique}"
    stage = Stage("intake", IntakeSettings(kafka_bootstrap=settings.kafka_bootstrap, retry_initial_s=0.05))
    stage.publisher(topics.ACCEPTED, AcceptedRecord)
    subscribers.register(stage, BuildFacets.of(schema), topic=topic, group=f"coc-intake-test.{unique}")
    await stage.start()
    try:
        yield topic
    finally:
        await stage.stop()


async def dead_letter(settings: CocSettings, topic: str, vin: str) -> DeadLetter:
    letter = await read(settings, topics.dlq(topic), lambda r: r.key == vin.encode())
    return DeadLetter.model_validate_json(letter.value)


async def rejected(settings: CocSettings, vin: str) -> StatusEvent:
    status = await read(settings, topics.STATUS, lambda r: r.key == vin.encode())
    return StatusEvent.model_validate_json(status.value)


async def test_markup_in_the_plant_goes_to_the_dead_letter_topic_with_the_field_and_a_rejected_status(
    settings: CocSettings, unique: str, intake: str
) -> None:
    build = {**sample(0, unique[:6].upper()), "plant": MARKUP}
    await publish_raw(settings, intake, json.dumps(build).encode(), build["vin"].encode())

    dead = await dead_letter(settings, intake, build["vin"])
    assert dead.source_topic == intake and dead.reason.startswith("plant: ")
    assert "may hold only letters, digits, spaces" in dead.reason
    event = await rejected(settings, build["vin"])
    assert (event.state, event.stage, event.reason) == (State.REJECTED, "intake", dead.reason)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda u: {"vin": f"AB7{u}"}, "vin", "has 15 characters"),  # length
        (lambda u: {"vin": f"AB7{u[:6]}.{u[5:]}"}, "vin", "pattern [A-Z0-9]+"),  # pattern
        (lambda u: {"intended_country": "EU"}, "intended_country", "ViennaCountryCode codes"),  # enumeration
    ],
)
async def test_a_value_its_certificate_element_refuses_goes_to_the_dead_letter_topic_naming_the_field(
    settings: CocSettings,
    unique: str,
    intake: str,
    change: Callable[[str], dict[str, str]],
    field: str,
    words: str,
) -> None:
    build = {**sample(1, unique[:6].upper()), **change(unique.upper())}
    await publish_raw(settings, intake, json.dumps(build).encode(), build["vin"].encode())

    dead = await dead_letter(settings, intake, build["vin"])
    assert dead.reason.startswith(f"{field}: ") and words in dead.reason
    event = await rejected(settings, build["vin"])
    assert (event.state, event.reason) == (State.REJECTED, dead.reason)
    assert event.vehicle_group == build["vehicle_group"]  # the status names the build's group


async def test_markup_in_the_plant_posted_over_http_is_a_422_naming_the_field(
    settings: CocSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_name(Role.MES), f"mes-{unique}")
    app = create_app(IntakeSettings(kafka_bootstrap=settings.kafka_bootstrap))
    build = {**sample(2, unique[:6].upper()), "plant": MARKUP, "vehicle_group": "<script>alert(1)</script>"}
    headers = {"Authorization": f"Bearer mes-{unique}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        answer = await client.post("/v1/builds", content=json.dumps(build), headers=headers)
    assert answer.status_code == 422, answer.text
    fields = [(p["item"], p["field"]) for p in answer.json()["detail"]["problems"]]
    assert fields == [(1, "plant"), (1, "vehicle_group")]
