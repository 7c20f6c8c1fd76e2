"""Every service twice (`coc stack up --replicas 2`): the work shared, one instance of each killed, nothing twice.

A private stack of its own (Kafka 25092/25093, FerretDB 26017, services 24081-24088
and their second instances 24091-24098, a test VCA on 24444 that takes every
certificate), apart from the default private stack's ports, so it never meets
another e2e session's, and below the ephemeral range (32768-60999): a port there may be
taken by any outgoing connection the moment before a service binds it. The run's size comes from E2E_REPLICA_BUILDS (default 600).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from deploy.local.services import SERVICES, instance_name, instance_url
from devkit.authorities import Vca
from devkit.watch import topic_partitions
from shared import topics
from shared.auth import Role
from shared.kafka import options_for
from tests.conftest import eventually
from tests.e2e.browser import add_person
from tests.e2e.helpers import (
    PrivateStack,
    archive_problems,
    outcome_problems,
    own_stack,
    sample_run,
    say,
    show,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("E2E_REPLICAS"), reason="every service twice, about 5 minutes: make test-replicas"
    ),
]

REPLICA_BUILDS = int(os.environ.get("E2E_REPLICA_BUILDS", "600"))
SETTLE_S = float(os.environ.get("E2E_REPLICA_TIMEOUT", "600"))
VCA_PORT = 24444
VCA_CLIENT, VCA_SECRET = "coc-replicas", "replicas-secret-for-the-test-vca"
OWN_PORTS = {
    "COC_KAFKA_BOOTSTRAP": "127.0.0.1:25092",
    "COC_KAFKA_CONTROLLER_PORT": "25093",
    "COC_MONGO_URL": "mongodb://127.0.0.1:26017",
    "COC_PORT_BASE": "24080",
    "COC_STATUS_RECOUNT_S": "20",  # the board's counters counted again soon after the run is at rest
}
# The consumer group of each stage that shares a topic's partitions between its instances.
GROUPS = {
    "intake": "coc-intake",  # its name since the first release (services.intake.subscribers)
    "validation": f"coc-validation.{topics.ACCEPTED}",
    "render": f"coc-render.{topics.VALIDATED}",
    "signing": f"coc-signing.{topics.RENDERED}",
    "archive": f"coc-archive.{topics.SIGNED}",
    "delivery": f"coc-delivery.{topics.ARCHIVED}",
    "status": f"coc-status.{topics.STATUS}",
}
# One instance of each service killed mid-run: the first of some (the address every client
# uses), the second of the others; `coc stack up` starts them again.
KILLED = (
    "intake-2",
    "validation",
    "render-2",
    "signing",
    "archive",
    "delivery",
    "status-2",
    "workspace-2",
)
HARM_AT = 0.25
IN_FLIGHT = (
    16  # sends one delivery instance has under way at most (COC_DELIVERY_CONCURRENCY of the e2e stacks)
)


def vca_destination() -> dict[str, str]:
    destination = {
        "kind": "vca",
        "countries": ["*"],
        "endpoints": {"acceptance": f"http://127.0.0.1:{VCA_PORT}"},
        "token_urls": {"acceptance": f"http://127.0.0.1:{VCA_PORT}/oauth2/token"},
        "client_id": VCA_CLIENT,
        "scopes": {"acceptance": "ecoc"},
        "manufacturer_id": "E2E-MANUFACTURER",
        "contact_id": "E2E-CONTACT",
        "timeout_s": 5,
    }
    return {
        "COC_DELIVERY_DESTINATIONS": json.dumps({"vca": destination}),
        "COC_DELIVERY_SECRETS": json.dumps({"vca": VCA_SECRET}),
    }


@pytest.fixture(scope="module")
def replicas(request: pytest.FixtureRequest) -> Iterator[tuple[PrivateStack, Vca]]:
    """``coc stack up --replicas 2`` on its own ports and state (``own_stack``), delivering to a test VCA."""
    with (
        Vca(VCA_CLIENT, VCA_SECRET, port=VCA_PORT).running() as vca,
        own_stack(request, "replicas", {**OWN_PORTS, **vca_destination()}, "--replicas", "2") as stack,
    ):
        yield stack, vca  # type: ignore[misc]


@pytest.fixture(scope="module")
async def warm(replicas: tuple[PrivateStack, Vca]) -> AsyncIterator[tuple[PrivateStack, Vca]]:
    """The approvals loaded and one build of each archived: both instances of each stage have begun."""
    stack, vca = replicas
    async with stack.client() as client:
        run = sample_run(80, seed=2901, tag="R", defect_share=0.0)
        response = await client.post_approvals(run.approvals)
        assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
        first = {b.approval.key: b for b in reversed(run.builds)}
        probes = [first[a.key] for a in run.approvals if a.key in first]
        records = await client.publish_and_settle(probes, 240)
        assert {r["state"] for r in records.values()} == {"archived"}, records
        yield client, vca


def test_stack_status_lists_both_instances_of_every_service_each_healthy_on_its_own_port(
    replicas: tuple[PrivateStack, Vca],
) -> None:
    stack, _vca = replicas
    result = stack.coc("stack", "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in SERVICES:
        for instance in (1, 2):
            row = rows[instance_name(name, instance)]
            port = stack.settings.port_of(name) + 10 * (instance - 1)
            assert (row["state"], row["address"]) == ("healthy", f"127.0.0.1:{port}"), row


async def test_both_instances_of_each_consuming_stage_hold_partitions_of_its_topic(
    warm: tuple[PrivateStack, Vca],
) -> None:
    stack, _vca = warm
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        held = {stage: await stable_assignment(admin, group) for stage, group in GROUPS.items()}
    finally:
        await admin.close()
    for stage, members in held.items():
        assert len(members) == 2, f"{stage}: {len(members)} members: {members}"
        assert all(members.values()), f"{stage}: an instance holds no partition: {members}"
        assert sorted(p for parts in members.values() for p in parts) == list(range(6)), members
    say("  partitions per instance: " + "; ".join(f"{s} {sorted(m.values())}" for s, m in held.items()))


async def test_an_approval_that_comes_later_validates_each_waiting_record_once_with_two_validations(
    warm: tuple[PrivateStack, Vca],
) -> None:
    """Both validation instances read the approval; only the one holding a VIN's partition decides it again."""
    stack, _vca = warm
    run = sample_run(60, seed=2903, tag="W", defect_share=0.0)
    later = {a.key: a.model_copy(update={"version": f"{a.version}-W"}) for a in run.approvals}
    builds = [
        b.model_copy(
            update={"approval": b.approval.model_copy(update={"version": later[b.approval.key].version})}
        )
        for b in run.builds
    ]
    waiting = await stack.publish_and_settle(builds, SETTLE_S)
    assert {r["state"] for r in waiting.values()} == {"blocked"}, waiting  # their approvals not known yet
    expected = {b.vin: b.revision for b in builds}
    async with stack.watch(expected) as watch:
        response = await stack.post_approvals(list(later.values()))
        assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
        records = await stack.settle(watch, expected, SETTLE_S)
    assert {r["state"] for r in records.values()} == {"archived"}, records
    validated = await keys_on(stack.bootstrap, topics.VALIDATED, set(expected))
    twice = {vin: n for vin, n in validated.items() if n != 1}
    assert set(validated) == set(expected) and not twice, f"validated more than once: {twice}"


async def keys_on(bootstrap: str, topic: str, wanted: set[str]) -> Counter[str]:
    """How many records of ``topic`` (from its beginning to its end now) each key in ``wanted`` has."""
    consumer = AIOKafkaConsumer(**options_for(bootstrap), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: Counter[str] = Counter()

        async def read_to_end() -> bool:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found.update(key for r in batch if (key := (r.key or b"").decode()) in wanted)
            return all([await consumer.position(p) >= ends[p] for p in partitions])

        await eventually(read_to_end, within_s=60, every_s=0, what=f"{topic} read to its end")
        return found
    finally:
        await consumer.stop()


async def stable_assignment(
    admin: AIOKafkaAdminClient, group: str, timeout: float = 60
) -> dict[str, list[int]]:
    """Each member's partitions of a stable group (its client host and id name it)."""
    deadline = time.monotonic() + timeout
    while True:
        (response,) = await admin.describe_consumer_groups([group])
        (described,) = response.to_object()["groups"]
        if described["state"] == "Stable":
            members: dict[str, list[int]] = {}
            for member in described["members"]:
                assignment = ConsumerProtocolMemberAssignment.decode(member["member_assignment"])
                members[member["member_id"]] = [p for _topic, parts in assignment.assignment for p in parts]
            return members
        assert time.monotonic() < deadline, (
            f"group {group} not stable after {timeout:.0f}s: {described['state']}"
        )
        await asyncio.sleep(0.5)


async def test_one_instance_of_each_service_killed_mid_run_loses_nothing_and_doubles_nothing(
    warm: tuple[PrivateStack, Vca],
) -> None:
    stack, vca = warm
    run = sample_run(REPLICA_BUILDS, seed=2902, tag="P", defect_share=0.1)
    clean = len(run.clean)
    began = time.monotonic()
    async with stack.watch(run.expected) as watch:
        await stack.publish(run.builds)
        await watch.wait(lambda w: len(w.archived) >= HARM_AT * clean, SETTLE_S, f"{HARM_AT:.0%} archived")
        before = len(watch.archived)
        killed = {name: stack.kill(name) for name in KILLED}
        say(
            f"  killed {len(killed)} instances after {time.monotonic() - began:.1f}s, {before}/{clean} archived"
        )
        output = await asyncio.to_thread(stack.up)
        for name, pid in killed.items():
            assert f"{name}: pid {pid} is gone" in output, f"coc stack up did not restart {name}:\n{output}"
        records = await stack.settle(watch, run.expected, SETTLE_S, status_api=True)
    say(f"  {len(run.builds)} builds settled {time.monotonic() - began:.1f}s after the first publish")
    assert before < clean, f"the kill came after the run: {before} of {clean} were archived already"
    problems = outcome_problems(run, records)
    assert not problems, f"{len(problems)} of {len(run.builds)} records are not as planted:{show(problems)}"
    problems = archive_problems(stack.archive_rows(run.vins), run.clean)
    assert not problems, f"archive_certificates is not one certificate per clean build:{show(problems)}"

    ours = {b.vin for b in run.clean}
    await eventually(
        lambda: ours <= {vin for vin, _n in vca.ledger.per_certificate()},
        within_s=SETTLE_S,
        every_s=1.0,
        what="every clean build delivered to the VCA",
    )
    kept = {key: n for key, n in vca.ledger.per_certificate().items() if key[0] in ours}
    twice = {key: n for key, n in kept.items() if n != 1}
    assert not twice, f"certificates the VCA kept more than once: {twice}"
    references = {ref for ref, kept_one in vca.ledger.stored.items() if kept_one["vin"] in ours}
    resent = {ref: n for ref, n in vca.ledger.uploads.items() if ref in references and n > 1}
    say(
        f"  VCA: {len(kept)} kept, sent again {resent}; {time.monotonic() - began:.1f}s after the first publish"
    )
    # Sent once each; only a send in flight in the killed delivery instance may go out again (in doubt).
    assert len(resent) <= IN_FLIGHT and all(n == 2 for n in resent.values()), f"sent more than once: {resent}"
    await read_model_agrees_with_archive(stack, vca, ours)


async def read_model_agrees_with_archive(
    stack: PrivateStack, vca: Vca, ours: set[str], timeout: float = 120
) -> None:
    """At rest each record says delivered, and the board's archived count is the archive's (after a recount).

    The board's delivery counters are not recounted (``services.status.adapters.counters``):
    moved by ``$inc`` from two status instances at once on FerretDB, or by a status instance
    killed between a record's write and its counters, they may end off; shown, not held to.
    """

    def archive_count() -> int:  # vehicles, as the board counts them (a VIN's revisions are one vehicle)
        with stack.mongo() as db:
            return len({doc["vin"] for doc in db["archive_certificates"].find({}, {"vin": 1})})

    async def delivery_states() -> dict[str, Any]:
        records = await stack.records(ours)
        return {vin: ((r or {}).get("delivery") or {}).get("state") for vin, r in records.items()}

    async def all_delivered() -> bool:
        states = await delivery_states()
        return all(state == "delivered" for state in states.values())

    await eventually(
        all_delivered, within_s=timeout, every_s=2.0, what="every clean record delivered in the read model"
    )
    archived, delivered = await asyncio.to_thread(archive_count), len(vca.ledger.per_certificate())

    async def board() -> tuple[Any, Any] | None:
        response = await stack.web.get(f"{stack.url('status')}/v1/readiness", headers=stack.auth(Role.VIEWER))
        found = response.json()
        shown = (found["by_state"].get("archived"), found["delivery_by_state"].get("delivered"))
        say(f"  board: archived, delivered {shown}; archive {archived}, VCA {delivered}")
        return shown if shown[0] == archived else None

    await eventually(board, within_s=timeout, every_s=5.0, what=f"{archived} archived on the board")


async def test_the_second_workspace_serves_the_board_and_follows_new_builds_live(
    warm: tuple[PrivateStack, Vca],
) -> None:
    stack, _vca = warm
    person = add_person(stack, "Rhea Replica", "viewer")
    base = instance_url(stack.settings, "workspace", 2)
    async with httpx.AsyncClient(base_url=base, timeout=30) as web:
        form = await web.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf, "no CSRF token on the sign-in form"
        signed = await web.post(
            "/signin",
            data={"name": person.name, "password": person.password, "csrf": csrf.group(1), "next": "/"},
        )
        assert signed.status_code == 303, f"sign-in on the second workspace: {signed.status_code}"
        board = await web.get("/board.json")
        assert board.status_code == 200 and "states" in json.dumps(board.json()), board.text[:300]
        run = sample_run(3, seed=2903, tag="N", defect_share=0.0)
        vin = run.builds[0].vin
        record_page, board_page = live_messages(web, f"/live?vin={vin}"), live_messages(web, "/live")
        heard = asyncio.gather(
            first_message(record_page, f'"vin":"{vin}"'), first_message(board_page, "event: board")
        )
        await asyncio.sleep(0)  # both streams opened before the build is published
        await stack.publish(run.builds[:1])
        record, board_update = await asyncio.wait_for(heard, 90)
    assert vin in record and "board" in board_update


async def live_messages(web: httpx.AsyncClient, path: str) -> AsyncIterator[str]:
    """The lines of one open page's event stream."""
    async with web.stream("GET", path, timeout=httpx.Timeout(30, read=90)) as live:
        assert live.status_code == 200, f"{path}: {live.status_code}"
        async for line in live.aiter_lines():
            yield line


async def first_message(lines: AsyncIterator[str], wanted: str) -> str:
    """The first line of the stream that holds ``wanted`` (the test's bound ends the wait)."""
    async for line in lines:
        if wanted in line:
            return line
    raise AssertionError(f"the stream ended before {wanted}")
