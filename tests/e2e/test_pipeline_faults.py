"""Processes killed in the middle of a run, and a second signing instance: nothing lost, nothing twice.

Each test publishes its own sample run (its own VIN tag), lets part of it through,
does its harm, and then checks what a run without harm shows: every clean build
archived once (counted in MongoDB, per VIN and revision), every defective one
blocked with its planted finding, none left in between (status API).

The runs are large enough that the harm lands mid-stream; their sizes come from
the environment: E2E_SIGNING_KILL_BUILDS (default 2000) for the signing kill,
E2E_FAULT_BUILDS (default 600) for the others. The kill of signing and archive in
the middle of a large run (issue 11's acceptance, 20,000 builds) runs only when
E2E_LARGE_KILL_BUILDS is set (`make test-large`): it takes longer than the whole
of `make test` may.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.watch import StatusWatch
from shared import topics
from shared.contracts.events import State
from tests.e2e.helpers import (
    PrivateStack,
    SampleRun,
    archive_problems,
    outcome_problems,
    sample_run,
    say,
    show,
)

pytestmark = pytest.mark.e2e

SIGNING_KILL_BUILDS = int(os.environ.get("E2E_SIGNING_KILL_BUILDS", "2000"))
FAULT_BUILDS = int(os.environ.get("E2E_FAULT_BUILDS", "600"))
FAULT_TIMEOUT = float(os.environ.get("E2E_FAULT_TIMEOUT", "900"))
LARGE_KILL_BUILDS = int(os.environ.get("E2E_LARGE_KILL_BUILDS", "0"))
DEFECT_SHARE = 0.1
HARM_AT = 0.25  # share of the clean builds archived when the harm is done
SIGNING_GROUP = f"coc-signing.{topics.RENDERED}"


def archived(watch: StatusWatch) -> int:
    return len(watch.archived)


async def run_through(
    pipeline: PrivateStack,
    run: SampleRun,
    harm: Callable[[], None],
    *,
    status_api: bool = False,
    harm_at: float = HARM_AT,
    timeout: float = FAULT_TIMEOUT,
) -> StatusWatch:
    """Publish the run, do ``harm`` once a share is archived, then check the run's outcome.

    The outcome is read from the status topic, or with ``status_api`` from the
    status API (which waits for the status service to fold every event).
    """
    clean = len(run.clean)
    began = time.monotonic()
    async with pipeline.watch(run.expected) as watch:
        await pipeline.publish(run.builds)
        await watch.wait(lambda w: archived(w) >= harm_at * clean, timeout, f"{harm_at:.0%} archived")
        before = archived(watch)
        say(f"  harm after {time.monotonic() - began:.1f}s, {before}/{clean} clean builds archived")
        await asyncio.to_thread(harm)
        records = await pipeline.settle(watch, run.expected, timeout, status_api=status_api)
    say(f"  {len(run.builds)} builds settled {time.monotonic() - began:.1f}s after the first publish")
    assert before < clean, f"the harm came after the run: {before} of {clean} were archived already"
    check_outcome(pipeline, run, records)
    return watch


def check_outcome(pipeline: PrivateStack, run: SampleRun, records: dict[str, dict[str, Any]]) -> None:
    problems = outcome_problems(run, records)
    assert not problems, f"{len(problems)} of {len(run.builds)} records are not as planted:{show(problems)}"
    problems = archive_problems(pipeline.archive_rows(run.vins), run.clean)
    assert not problems, f"archive_certificates is not one certificate per clean build:{show(problems)}"


def kill_and_restart(pipeline: PrivateStack, *names: str) -> Callable[[], None]:
    """SIGKILL the processes, then `coc stack up`, which starts what is stopped."""

    def harm() -> None:
        killed = {name: pipeline.kill(name) for name in names}
        output = pipeline.up()
        for name, pid in killed.items():
            assert f"{name}: pid {pid} is gone" in output, f"coc stack up did not restart {name}:\n{output}"
            assert pipeline.pid(name) != pid

    return harm


# The status kill runs first: it reads the status API, which waits for the status service
# to fold every event on the topic, and the other runs would leave it thousands behind.
async def test_a_status_service_killed_mid_run_and_restarted_shows_every_record_settled(
    pipeline: PrivateStack,
) -> None:
    run = sample_run(FAULT_BUILDS, seed=603, tag="H", defect_share=DEFECT_SHARE)
    await run_through(pipeline, run, kill_and_restart(pipeline, "status"), status_api=True)


async def test_a_signing_service_killed_mid_run_and_restarted_archives_every_clean_build_once(
    pipeline: PrivateStack,
) -> None:
    run = sample_run(SIGNING_KILL_BUILDS, seed=601, tag="F", defect_share=DEFECT_SHARE)
    await run_through(pipeline, run, kill_and_restart(pipeline, "signing"))


async def test_an_archive_service_killed_mid_run_and_restarted_archives_every_clean_build_once(
    pipeline: PrivateStack,
) -> None:
    run = sample_run(FAULT_BUILDS, seed=602, tag="G", defect_share=DEFECT_SHARE)
    await run_through(pipeline, run, kill_and_restart(pipeline, "archive"))


@pytest.mark.skipif(not LARGE_KILL_BUILDS, reason="a large run: set E2E_LARGE_KILL_BUILDS (make test-large)")
async def test_signing_and_archive_killed_in_the_middle_of_a_large_run_archive_every_clean_build_once(
    pipeline: PrivateStack,
) -> None:
    run = sample_run(LARGE_KILL_BUILDS, seed=606, tag="L", defect_share=DEFECT_SHARE)
    harm = kill_and_restart(pipeline, "signing", "archive")
    await run_through(pipeline, run, harm, harm_at=0.5, timeout=max(FAULT_TIMEOUT, LARGE_KILL_BUILDS / 5))


async def test_a_broker_killed_mid_run_and_restarted_loses_no_build_and_doubles_none(
    pipeline: PrivateStack,
) -> None:
    run = sample_run(FAULT_BUILDS, seed=604, tag="J", defect_share=DEFECT_SHARE)
    await run_through(pipeline, run, kill_and_restart(pipeline, "kafka"))


async def test_two_signing_instances_in_one_group_share_the_work_with_the_same_result(
    pipeline: PrivateStack, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "signing-2.log"
    first_log = pipeline.log("signing")
    first_offset = first_log.stat().st_size
    second = pipeline.start_service("signing", port, log)
    try:
        await until_healthy(f"http://{pipeline.settings.http_host}:{port}/healthz", second, log)
        await until_group_stable(pipeline, SIGNING_GROUP, 2)  # one batch consumer per instance
        run = sample_run(FAULT_BUILDS, seed=605, tag="K", defect_share=DEFECT_SHARE)
        async with pipeline.watch(run.expected) as watch:
            await pipeline.publish(run.builds)
            records = await pipeline.settle(watch, run.expected, FAULT_TIMEOUT, status_api=False)
    finally:
        stop(second)
    check_outcome(pipeline, run, records)

    host = socket.gethostname()
    instances = {f"signing@{host}:{pipeline.pid('signing')}", f"signing@{host}:{second.pid}"}
    signers = Counter(
        event.service for seen in watch.seen.values() for event in seen.events if event.state is State.SIGNED
    )
    assert set(signers) == instances, f"signed by {dict(signers)}, instances {instances}"
    assert min(signers.values()) >= 0.1 * len(run.clean), f"one instance did almost nothing: {dict(signers)}"
    processed = {
        "stack's instance": processed_lines(first_log.read_bytes()[first_offset:]),
        "second instance": processed_lines(log.read_bytes()),
    }
    assert all(n > 0 for n in processed.values()), f"'handled' lines of {topics.RENDERED}: {processed}"
    say(f"  signed per instance: {dict(signers)}; log lines {processed}")


def processed_lines(log: bytes) -> int:
    return sum(1 for line in log.splitlines() if f"{topics.RENDERED}: handled ".encode() in line)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            assert process.poll() is None, (
                f"{url}: the process exited ({process.returncode}):\n{log.read_text()[-3000:]}"
            )
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (
                f"{url} not healthy after {timeout:.0f}s:\n{log.read_text()[-3000:]}"
            )
            await asyncio.sleep(0.3)


async def until_group_stable(pipeline: PrivateStack, group: str, members: int, timeout: float = 60) -> None:
    """Until the consumer group is stable with ``members`` consumers: the work is shared from then on."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            (response,) = await admin.describe_consumer_groups([group])
            (described,) = response.to_object()["groups"]
            if described["state"] == "Stable" and len(described["members"]) >= members:
                return
            assert time.monotonic() < deadline, (
                f"group {group} not stable with {members} members after {timeout:.0f}s: "
                f"{described['group_state']}, {len(described['members'])} members"
            )
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the instance's process group, SIGKILL if it does not end."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
