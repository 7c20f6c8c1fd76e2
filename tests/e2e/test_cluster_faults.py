"""Faults in the cluster mode (`coc stack up --brokers 3 --replicas 2`): a large run loses nothing, doubles nothing.

While one run of E2E_CLUSTER_FAULT_BUILDS builds (default 20,000; a tenth with defects)
goes through, published at a line's pace over E2E_CLUSTER_FAULT_PUBLISH_S (default 420 s)
so that the faults land while builds still arrive, in turn: the leader of coc.builds.v1 partition 0 is SIGKILLed and
started again, then the active controller, then one instance of each service (all
brought back by ``coc stack up``), and one broker is paused (SIGSTOP) for 30 s. Each
broker fault waits until the cluster is whole again (three brokers, no partition
under-replicated), so one broker at most is out at a time, which replication 3 with
``min.insync.replicas=2`` is made to survive. At rest: every clean build archived once
(the archive's collection, per VIN and revision), every defective one blocked or for
review with its planted finding (the status API), no clean build in a dead-letter
topic, and the board's archived count the archive's. The test prints its figures:
builds, archived, time, CPU per process and the retries and rebalances the logs show.

A private stack on ports of its own (brokers 31092, 31192, 31292; controllers 31093,
31193, 31293; FerretDB 31017; services 30081-30088 and 30091-30098), below the
ephemeral range. Run with E2E_CLUSTER=1 (``make test-cluster``); not part of ``make test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.resources import Usage, cpu_seconds, resident_mb, stack_processes
from deploy.local.cluster import active_controller, admin_options, under_replicated
from devkit.mes import progress_lines, publish_builds
from devkit.watch import StatusWatch, topic_partitions
from shared import topics
from shared.auth import Role
from shared.kafka import client_options
from tests.conftest import eventually
from tests.e2e.helpers import (
    PrivateStack,
    SampleRun,
    archive_problems,
    outcome_problems,
    own_stack,
    sample_run,
    say,
    show,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("E2E_CLUSTER"), reason="the cluster mode: set E2E_CLUSTER=1"),
]

FAULT_BUILDS = int(os.environ.get("E2E_CLUSTER_FAULT_BUILDS", "20000"))
PUBLISH_S = float(os.environ.get("E2E_CLUSTER_FAULT_PUBLISH_S", "420"))  # the four faults take 3-5 minutes
SETTLE_S = float(os.environ.get("E2E_CLUSTER_FAULT_TIMEOUT", str(max(900, FAULT_BUILDS / 10))))
WHOLE_S = 300  # a broker back in sync with every partition, the machine loaded
PAUSE_S = 30  # how long one broker is stopped: a duration of the fault, not a wait for something
OWN_PORTS = {
    "COC_KAFKA_BOOTSTRAP": "127.0.0.1:31092",
    "COC_KAFKA_CONTROLLER_PORT": "31093",
    "COC_MONGO_URL": "mongodb://127.0.0.1:31017",
    "COC_PORT_BASE": "30080",
    "COC_STATUS_RECOUNT_S": "20",  # the board counted again soon after the run is at rest
}
# One instance of each service: the first of some (the address every client uses), the second of the others.
SERVICE_KILLS = (
    "intake",
    "validation-2",
    "render",
    "signing-2",
    "archive",
    "delivery-2",
    "status",
    "workspace-2",
)
# What the services' and brokers' logs say when a consumer retries or its group rebalances.
LOG_SIGNS = {
    "polls again": re.compile(r"polling again"),
    "commits failed": re.compile(r"commit failed"),
    "rewinds": re.compile(r"rewind|read again at start"),
    "partitions assigned": re.compile(r"(?i)newly assigned partitions|partitions assigned"),
    "producer retries": re.compile(r"(?i)retrying|will retry|NotEnoughReplicas|NotLeader"),
}


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[PrivateStack]:
    """``coc stack up --brokers 3 --replicas 2`` on its own ports and state (``own_stack``).

    The test's tools (devkit's publisher and watch) find the cluster's admin login in
    the state folder, as ``coc`` does: COC_STATE_DIR points there.
    """
    up = ("--brokers", "3", "--replicas", "2")
    with own_stack(request, "cluster faults", OWN_PORTS, *up) as stack, pytest.MonkeyPatch.context() as env:
        env.setenv("COC_STATE_DIR", str(stack.settings.state_dir))
        yield stack


@pytest.fixture(scope="module")
async def warm(cluster: PrivateStack) -> AsyncIterator[PrivateStack]:
    """The approvals loaded and a build of each approval archived: every stage has begun."""
    async with cluster.client() as stack:
        run = sample_run(80, seed=2961, tag="C", defect_share=0.0)
        response = await stack.post_approvals(run.approvals)
        assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
        first = {b.approval.key: b for b in reversed(run.builds)}
        probes = [first[a.key] for a in run.approvals if a.key in first]
        records = await stack.publish_and_settle(probes, 300)
        assert {r["state"] for r in records.values()} == {"archived"}, records
        yield stack


# --- the cluster, seen by its admin ------------------------------------------------------------


@contextlib.asynccontextmanager
async def admin_of(stack: PrivateStack) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**client_options(stack.settings), request_timeout_ms=10000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def partition_leader(stack: PrivateStack, topic: str, partition: int) -> str:
    """The stack's name of the broker leading the partition (``kafka-k``)."""
    async with admin_of(stack) as admin:
        (described,) = await admin.describe_topics([topic])
    (found,) = [p for p in described["partitions"] if p["partition"] == partition]
    return f"kafka-{found['leader']}"


async def until_whole(stack: PrivateStack) -> None:
    """Until three brokers answer and no partition is under-replicated (bounded by WHOLE_S)."""

    async def whole() -> bool:
        try:
            async with admin_of(stack) as admin:
                brokers = (await admin.describe_cluster())["brokers"]
            lagging = await asyncio.wait_for(under_replicated(admin_options(stack.settings)), 20)
        except Exception:  # a broker just started may not answer everything yet
            return False
        return len(brokers) == 3 and not lagging

    began = time.monotonic()
    await eventually(whole, within_s=WHOLE_S, every_s=2.0, what="three brokers, none under-replicated")
    say(f"  cluster whole again after {time.monotonic() - began:.1f}s")


# --- the faults -----------------------------------------------------------------------------------


async def kill_and_bring_back(stack: PrivateStack, *names: str) -> None:
    """SIGKILL the processes, then ``coc stack up``, which starts what died."""
    killed = {name: stack.kill(name) for name in names}
    result = await asyncio.to_thread(stack.coc, "stack", "up")
    output = result.stdout
    assert result.returncode == 0, f"coc stack up failed:\n{result.stdout}{result.stderr}"
    for name, pid in killed.items():
        assert f"{name}: pid {pid} is gone" in output, f"coc stack up did not start {name} again:\n{output}"


async def kill_builds_leader(stack: PrivateStack) -> str:
    leader = await partition_leader(stack, topics.BUILDS, 0)
    await kill_and_bring_back(stack, leader)
    await until_whole(stack)
    return f"{leader} (leader of {topics.BUILDS}/0) killed"


async def kill_active_controller(stack: PrivateStack) -> str:
    controller = active_controller(stack.settings, 3)
    assert controller is not None, "no active controller in the nodes' quorum state"
    await kill_and_bring_back(stack, f"kafka-{controller}")
    await until_whole(stack)
    return f"kafka-{controller} (active controller) killed"


async def kill_one_instance_of_each_service(stack: PrivateStack) -> str:
    await kill_and_bring_back(stack, *SERVICE_KILLS)
    return f"{', '.join(SERVICE_KILLS)} killed"


async def pause_a_broker(stack: PrivateStack) -> str:
    """SIGSTOP the leader of coc.builds.v1 partition 1 for PAUSE_S seconds, then SIGCONT."""
    broker = await partition_leader(stack, topics.BUILDS, 1)
    pid = stack.pid(broker)
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(PAUSE_S)
    finally:
        os.kill(pid, signal.SIGCONT)
    await until_whole(stack)
    return f"{broker} paused {PAUSE_S}s"


Fault = Callable[[PrivateStack], Awaitable[str]]
# Each fault once this share of the clean builds is archived (and the one before it is over).
FAULTS: tuple[tuple[float, Fault], ...] = (
    (0.10, kill_builds_leader),
    (0.25, kill_active_controller),
    (0.40, kill_one_instance_of_each_service),
    (0.55, pause_a_broker),
)


# --- figures: CPU per process and what the logs show ------------------------------------------


@dataclass
class CpuTally:
    """CPU seconds of every process of the stack, followed by pid (a process started again counts on)."""

    stack: PrivateStack
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)

    def sample(self) -> None:
        for name, pid in stack_processes(self.stack.paths.pids).items():
            used = cpu_seconds(pid)
            if used is None:
                continue
            self.first.setdefault(pid, used)
            self.last[pid] = used
            self.names[pid] = name
            self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), resident_mb(pid) or 0.0)

    def usage(self) -> Usage:
        cpu: dict[str, float] = {}
        for pid, name in self.names.items():
            cpu[name] = cpu.get(name, 0.0) + self.last[pid] - self.first[pid]
        return Usage(cpu_s=cpu, peak_mb=dict(self.peak_mb))


@contextlib.asynccontextmanager
async def tallying(stack: PrivateStack) -> AsyncIterator[CpuTally]:
    """CPU per process from entering the block to leaving it, sampled each second."""
    tally = CpuTally(stack)

    async def sampler() -> None:
        while True:
            tally.sample()
            await asyncio.sleep(1)

    task = asyncio.create_task(sampler())
    try:
        yield tally
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        tally.sample()


def log_sizes(stack: PrivateStack) -> dict[Path, int]:
    return {log: log.stat().st_size for log in stack.paths.logs.rglob("*.log") if log.is_file()}


def log_signs(stack: PrivateStack, since: dict[Path, int]) -> Counter[str]:
    """How often each of LOG_SIGNS appears in what the logs got since ``since``."""
    seen: Counter[str] = Counter()
    for log in stack.paths.logs.rglob("*.log"):
        with log.open("rb") as text:
            text.seek(since.get(log, 0))
            for line in text.read().decode(errors="replace").splitlines():
                seen.update(sign for sign, pattern in LOG_SIGNS.items() if pattern.search(line))
    return seen


# --- at rest ----------------------------------------------------------------------------------------


async def dead_letter_keys(stack: PrivateStack) -> Counter[str]:
    """The keys of every message in every dead-letter topic, from its start to its end now."""
    consumer = AIOKafkaConsumer(**client_options(stack.settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    keys: Counter[str] = Counter()
    try:
        partitions = [
            TopicPartition(topics.dlq(topic), p)
            for topic in topics.ALL
            for p in await topic_partitions(stack.bootstrap, topics.dlq(topic))
        ]
        ends = await consumer.end_offsets(partitions)
        wanted = {tp: end for tp, end in ends.items() if end > 0}
        consumer.assign(list(wanted))
        if wanted:
            await consumer.seek_to_beginning(*wanted)
        while any([await consumer.position(tp) < end for tp, end in wanted.items()]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                keys.update((r.key or b"").decode(errors="replace") for r in records)
    finally:
        await consumer.stop()
    return keys


async def board_agrees_with_archive(stack: PrivateStack) -> int:
    """Until the readiness board's archived count is the archive's count of VINs (after a recount)."""

    def archive_count() -> int:  # vehicles, as the board counts them (a VIN's revisions are one vehicle)
        with stack.mongo() as db:
            return len({doc["vin"] for doc in db["archive_certificates"].find({}, {"vin": 1})})

    archived = await asyncio.to_thread(archive_count)

    async def board() -> int | None:
        response = await stack.web.get(f"{stack.url('status')}/v1/readiness", headers=stack.auth(Role.VIEWER))
        shown = response.json()["by_state"].get("archived")
        return archived if shown == archived else None

    return await eventually(
        board, within_s=180, every_s=5.0, what=f"the board's archived count at the archive's {archived}"
    )


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class Harmed:
    """What was done during the run and when: (fault, seconds after the first publish, clean builds archived)."""

    done: list[tuple[str, float, int]] = field(default_factory=list)


async def run_with_faults(stack: PrivateStack, run: SampleRun, watch: StatusWatch, began: float) -> Harmed:
    clean = len(run.clean)
    harmed = Harmed()
    for share, fault in FAULTS:

        def reached(w: StatusWatch, share: float = share) -> bool:
            return len(w.archived) >= share * clean

        await watch.wait(reached, SETTLE_S, f"{share:.0%} archived")
        at, before = time.monotonic() - began, len(watch.archived)
        what = await fault(stack)
        say(f"  {what} at {at:.1f}s, {before}/{clean} clean builds archived")
        harmed.done.append((what, at, before))
    return harmed


def report(
    run: SampleRun, harmed: Harmed, seconds: float, tally: CpuTally, signs: Counter[str], archived: int
) -> None:
    say(
        f"cluster fault run: {len(run.builds)} builds ({len(run.clean)} clean), {archived} archived once each,"
    )
    say(f"  first publish to rest {seconds:.1f}s ({archived / seconds:.1f} archived/s with the faults)")
    for what, at, before in harmed.done:
        say(f"  {at:7.1f}s  {before:6d} archived  {what}")
    say("  seen in the logs: " + (", ".join(f"{k} {n}" for k, n in sorted(signs.items())) or "nothing"))
    say("  CPU per process, first publish to rest:")
    for line in tally.usage().lines(archived):
        say(f"    {line}")


async def test_brokers_the_controller_and_one_instance_of_each_service_killed_and_a_broker_paused_lose_and_double_nothing(
    warm: PrivateStack,
) -> None:
    stack = warm
    run = sample_run(FAULT_BUILDS, seed=2962, tag="X", defect_share=0.1)
    logs_before = log_sizes(stack)
    began = time.monotonic()
    async with tallying(stack) as tally, stack.watch(run.expected) as watch:
        await stack.make_known(run.builds)
        rate = len(run.builds) / PUBLISH_S
        say(f"publishing {len(run.builds)} builds at {rate:.1f}/s, a line's pace, while the faults are done")
        line = asyncio.create_task(
            publish_builds(stack.bootstrap, run.builds, progress_lines(say), rate=rate)
        )
        try:
            harmed = await run_with_faults(stack, run, watch, began)
            await line
        finally:
            line.cancel()  # a fault that failed leaves no publisher behind
        records = await stack.settle(watch, run.expected, SETTLE_S, status_api=True)
    seconds = time.monotonic() - began
    problems = outcome_problems(run, records)
    assert not problems, f"{len(problems)} of {len(run.builds)} records are not as planted:{show(problems)}"
    rows = await asyncio.to_thread(stack.archive_rows, run.vins)
    problems = archive_problems(rows, run.clean)
    assert not problems, f"archive_certificates is not one certificate per clean build:{show(problems)}"
    dead = await dead_letter_keys(stack)
    good_dead = sorted({b.vin for b in run.clean} & set(dead))
    assert not good_dead, f"clean builds in a dead-letter topic: {good_dead[:20]}"
    await board_agrees_with_archive(stack)
    report(run, harmed, seconds, tally, log_signs(stack, logs_before), len(rows))
    late = [(what, before) for what, _at, before in harmed.done if before >= len(run.clean)]
    assert not late, f"faults done after every clean build was archived (the run too small?): {late}"
