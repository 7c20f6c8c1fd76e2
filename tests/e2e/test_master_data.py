"""Nothing unchecked in a record, on the private stack: markup and out-of-schema values refused at the door,
plants and vehicle groups as the compliance lead's master data, a group change between revisions reviewed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from devkit.mes import Message
from devkit.watch import describe
from shared import topics
from shared.auth import Role
from tests.e2e.helpers import PrivateStack, sample_run

pytestmark = pytest.mark.e2e

TIMEOUT = 120
MARKUP = '"><img src=x onerror=alert(1)>'


async def until_state(pipeline: PrivateStack, vin: str, state: str, revision: int = 1) -> dict[str, Any]:
    """Poll the status API until the VIN's record is in ``state`` at ``revision``; fail naming where it stands."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        record = await pipeline.record(vin)
        if record is not None and (record["state"], record["revision"]) == (state, revision):
            return record
        assert time.monotonic() < deadline, f"{vin} not {state} after {TIMEOUT}s: {describe(record)}"
        await asyncio.sleep(0.5)


def findings(record: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["code"], f["owner"], f["severity"]) for f in record["findings"]}


async def test_markup_in_the_plant_is_refused_over_http_naming_the_field_and_over_kafka_with_a_dead_letter(
    pipeline: PrivateStack,
) -> None:
    posted, published = (
        {**b.model_dump(mode="json"), "plant": MARKUP} for b in sample_run(2, seed=271, tag="3").builds
    )
    answer = await pipeline.web.post(
        f"{pipeline.url('intake')}/v1/builds",
        content=json.dumps(posted),
        headers={**pipeline.auth(Role.MES), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert [(p["item"], p["field"]) for p in answer.json()["detail"]["problems"]] == [(1, "plant")]
    assert await pipeline.record(posted["vin"]) is None  # nothing taken

    await pipeline.publish_raw([Message(json.dumps(published).encode(), published["vin"].encode())])
    (letter,) = await pipeline.dead_letters(topics.BUILDS, {published["vin"]: 1})
    assert letter.reason.startswith("plant: ") and "may hold only letters, digits, spaces" in letter.reason
    record = await until_state(pipeline, published["vin"], "rejected", revision=1)
    assert record["vehicle_group"] != MARKUP


async def test_a_build_of_an_unknown_group_is_blocked_for_compliance_until_the_lead_adds_the_group(
    pipeline: PrivateStack,
) -> None:
    group = f"E2E NEW {int(time.time()) % 100000}"
    (build,) = (
        b.model_copy(update={"vehicle_group": group}) for b in sample_run(1, seed=272, tag="4").builds
    )
    await pipeline.publish_raw([Message.of(build)])  # as an MES would, the group never added

    blocked = await until_state(pipeline, build.vin, "blocked")
    assert (
        findings(blocked) == {("GROUP_UNKNOWN", "compliance", "error")} and blocked["owner"] == "compliance"
    )
    added = await asyncio.to_thread(pipeline.coc, "groups", "add", group, "--by", "E2E Lead")
    assert added.returncode == 0, added.stdout + added.stderr
    await until_state(pipeline, build.vin, "archived")


async def test_a_revision_that_moves_the_vehicle_to_another_group_waits_for_a_review_owned_by_compliance(
    pipeline: PrivateStack,
) -> None:
    (first,) = sample_run(1, seed=273, tag="5", defect_share=0.0).builds
    other = "E2E MOVED TO"
    await pipeline.publish([first])
    await until_state(pipeline, first.vin, "archived")
    moved = first.model_copy(
        update={"revision": 2, "vehicle_group": other, "build_id": f"{first.build_id}-2"}
    )

    await pipeline.publish([moved])

    record = await until_state(pipeline, first.vin, "needs_review", revision=2)
    assert findings(record) == {("GROUP_CHANGED", "compliance", "warning")}
    (finding,) = record["findings"]
    assert f"from group {first.vehicle_group!r} to {other!r}" in finding["message"]
