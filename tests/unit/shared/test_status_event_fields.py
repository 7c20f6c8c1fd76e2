"""Status events name the vehicle's destination: the intended country of the build they are about."""

from __future__ import annotations

import pytest

from devkit.samples import generate
from shared import topics
from shared.contracts.events import State, StatusEvent
from shared.settings import ServiceSettings
from shared.stage import Stage
from tests.unit.shared.runtime_fakes import Recording

pytestmark = pytest.mark.unit


async def test_a_status_event_about_a_build_carries_its_country_and_the_record_type_given() -> None:
    build = generate(1, seed=5, defect_share=0.0).builds[0].model_copy(update={"intended_country": "NL"})
    stage = Stage("validation", ServiceSettings())
    stage.emitter.outbound = sent = Recording()

    await stage.emitter.status(vin=build.vin, revision=1, state=State.VALIDATED, build=build, record_type="V")
    await stage.emitter.status(vin=build.vin, revision=1, state=State.ARCHIVED)  # no build: nothing to say

    told, silent = sent.models(topics.STATUS, StatusEvent)
    assert (told.country, told.record_type) == ("NL", "V")
    assert (silent.country, silent.record_type) == (None, None)
