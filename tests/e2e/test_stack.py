"""`coc stack` driven as a user drives it: as commands, checked from the outside.

Ports are probed with plain sockets and processes looked up in /proc, so the
test believes what the machine shows, not what the stack says about itself.
Other suites need the stack up: whatever state the stack was in before this
module, it is put back afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deploy.local.health import port_open
from deploy.local.infra import stack_specs
from deploy.local.layout import StackPaths
from deploy.local.services import SERVICES
from deploy.local.settings import StackSettings
from deploy.local.supervise import read_records

pytestmark = pytest.mark.e2e

COC = str(Path(sys.executable).with_name("coc"))
COMMAND_TIMEOUT = 600  # a first `up` on a fresh machine also builds FerretDB


def coc(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [COC, *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    print(f"$ coc {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def ok(*args: str) -> str:
    result = coc(*args)
    assert result.returncode == 0, f"coc {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def settings() -> StackSettings:
    return StackSettings()


@pytest.fixture(scope="module")
def addresses(settings: StackSettings) -> list[tuple[str, int]]:
    infra = [address for spec in stack_specs(settings) for address in spec.addresses]
    return infra + [(settings.http_host, settings.port_of(name)) for name in SERVICES]


@pytest.fixture(scope="module", autouse=True)
def restore_stack() -> Iterator[None]:
    """Leave the stack as found: up if it was healthy, only Kafka and FerretDB if only they were, else down."""
    if coc("stack", "status").returncode == 0:
        found: tuple[str, ...] = ("up",)
    elif coc("stack", "status", "--infra").returncode == 0:
        found = ("up", "--infra")
    else:
        found = ("down",)
    yield
    ok("stack", *found)


def alive(pid: int) -> bool:
    """A live process with that pid; a zombie is dead, it only waits for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def stack_processes(state_dir: Path) -> list[str]:
    """Command lines of live processes using the state folder: the stack's, whoever started them."""
    needle = str(state_dir.resolve()).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and alive(int(proc.name)):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def assert_down(settings: StackSettings, addresses: list[tuple[str, int]]) -> None:
    assert [a for a in addresses if port_open(*a)] == []
    assert read_records(StackPaths.of(settings)) == []
    assert stack_processes(settings.state_dir) == []


def recorded_pids(settings: StackSettings) -> dict[str, int]:
    return {r.name: r.pid for r in read_records(StackPaths.of(settings))}


def test_down_up_again_and_down(settings: StackSettings, addresses: list[tuple[str, int]]) -> None:
    ok("stack", "down")
    assert_down(settings, addresses)
    stopped = coc("stack", "status")
    assert stopped.returncode == 1
    assert "stopped" in stopped.stdout

    ok("stack", "up")
    assert [a for a in addresses if not port_open(*a)] == []
    processes = {"kafka", "ferretdb", *SERVICES}
    assert ok("stack", "status").count("healthy") == len(processes)
    pids = recorded_pids(settings)
    assert set(pids) == processes

    again = ok("stack", "up")
    assert again.count("already running") == len(processes)
    assert recorded_pids(settings) == pids

    ok("stack", "down")
    assert_down(settings, addresses)
    assert [pid for pid in pids.values() if alive(pid)] == []


async def test_killed_broker_comes_back_with_its_messages(settings: StackSettings) -> None:
    ok("stack", "up")
    topic = f"e2e.stack.{uuid.uuid4().hex[:12]}"
    sent = [f"message {i}".encode() for i in range(30)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i, value in enumerate(sent):
            await producer.send_and_wait(topic, value, key=f"k{i}".encode())
    finally:
        await producer.stop()

    os.kill(recorded_pids(settings)["kafka"], signal.SIGKILL)
    status = coc("stack", "status")
    assert status.returncode == 1
    assert "stale pid file" in status.stdout

    assert "starting again" in ok("stack", "up")
    assert sorted(await read_all(settings.kafka_bootstrap, topic, len(sent))) == sorted(sent)


async def read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"e2e-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < expected:
            batches = await consumer.getmany(timeout_ms=10_000)
            if not batches:
                break
            received += [m.value for records in batches.values() for m in records if m.value]
    finally:
        await consumer.stop()
    return received
