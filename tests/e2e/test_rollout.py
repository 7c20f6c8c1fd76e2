"""Rollout: a vehicle group held by the environment is released by a policy change on coc.policies.v1.

Validation of the private stack is restarted with ``COC_RELEASE_POLICY`` holding
one group; clean builds of that group are published as an MES does and rest
held; ``coc policy set GROUP auto --by ...`` (what the workspace's rollout page
publishes too) releases them with no build resent and no service restarted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator

import pytest

from services.validation.adapters.policies import read_all
from shared.contracts.events import State
from shared.contracts.policies import ReleasePolicy
from tests.e2e.helpers import REVIEW_GROUP, PrivateStack, sample_run, show

pytestmark = pytest.mark.e2e

HOLD_GROUP = "E2E-ROLLOUT"
LEAD = "C. Lead"
BUILDS = 12
SEED = 701
TAG = "R"
TIMEOUT = 180


@pytest.fixture(scope="module")
async def held_stack(pipeline: PrivateStack) -> AsyncIterator[PrivateStack]:
    """The pipeline with validation restarted on an environment that holds HOLD_GROUP.

    ``coc stack up`` starts the stopped validation with its own environment;
    afterwards validation is restarted on the stack's usual environment again.
    """
    policy = {REVIEW_GROUP: "review", HOLD_GROUP: "hold"}
    held = dataclasses.replace(pipeline, env={**pipeline.env, "COC_RELEASE_POLICY": json.dumps(policy)})
    restart(held)
    try:
        yield held
    finally:
        restart(pipeline)


def restart(stack: PrivateStack) -> None:
    killed = stack.kill("validation")
    output = stack.up()
    assert f"validation: pid {killed} is gone" in output, (
        f"coc stack up did not restart validation:\n{output}"
    )


async def test_held_builds_of_a_group_released_by_a_policy_change_end_archived_and_blocked_ones_stay(
    held_stack: PrivateStack,
) -> None:
    run = sample_run(BUILDS, SEED, TAG, defect_share=0.0)
    builds = [b.model_copy(update={"vehicle_group": HOLD_GROUP}) for b in run.builds]
    clean, heavy = builds[:-1], builds[-1].model_copy(update={"actual_mass_kg": 99_999})
    response = await held_stack.post_approvals(run.approvals)
    assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
    expected = {b.vin: b.revision for b in builds}

    async with held_stack.watch(expected) as watch:
        await held_stack.publish([*clean, heavy])
        records = await held_stack.settle(watch, expected, TIMEOUT)
        problems = [f"{b.vin}: {records[b.vin]['state']}" for b in clean if records[b.vin]["state"] != "held"]
        assert not problems, f"clean builds of a held group not held:{show(problems)}"
        assert records[heavy.vin]["state"] == "blocked"

        result = await asyncio.to_thread(
            held_stack.coc, "policy", "set", HOLD_GROUP, "auto", "--by", LEAD, "--comment", "audit passed"
        )
        assert result.returncode == 0, f"coc policy set failed:\n{result.stdout}{result.stderr}"

        vins = [b.vin for b in clean]
        await watch.wait(
            lambda w: all(w.seen[vin].state is State.ARCHIVED for vin in vins), TIMEOUT, what="archived"
        )
        released = {
            vin: list(dict.fromkeys(e.state.value for e in watch.seen[vin].events if e.stage == "validation"))
            for vin in vins
        }

    # Said once or, redelivered, again: held, then validated, by validation, for each.
    problems = [
        f"{vin}: validation said {states}"
        for vin, states in released.items()
        if states != ["held", "validated"]
    ]
    assert not problems, f"released builds not decided once more, as validated:{show(problems)}"
    # The topic said archived; the status service's read model follows a batch later.
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        after = await held_stack.records([*vins, heavy.vin])
        problems = [
            f"{vin}: {(r or {}).get('state')}"
            for vin, r in after.items()
            if vin in vins and (r or {}).get("state") != "archived"
        ]
        if not problems or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert not problems, f"the status API does not show the released builds archived:{show(problems)}"
    blocked = after[heavy.vin]
    assert blocked is not None and blocked["state"] == "blocked", "an error finding must keep blocking"
    assert "ACTUAL_MASS_OUT_OF_RANGE" in [f["code"] for f in blocked["findings"]]

    changes = [c for c in await read_all(held_stack.settings) if c.vehicle_group == HOLD_GROUP]
    assert [(c.policy, c.set_by, c.comment) for c in changes] == [(ReleasePolicy.AUTO, LEAD, "audit passed")]
    listed = await asyncio.to_thread(held_stack.coc, "policy", "list")
    assert listed.returncode == 0, f"coc policy list failed:\n{listed.stdout}{listed.stderr}"
    (line,) = [line for line in listed.stdout.splitlines() if line.split()[0] == HOLD_GROUP]
    assert line.split()[1] == "auto" and f"{LEAD} at " in line and "(audit passed)" in line, line
