"""The local stack's layout: its versions, folders and files, and what a process of it is.

The stack is a list of :class:`ProcessSpec` (Kafka and FerretDB in ``infra``, the
services in ``services``); ``supervise`` starts, waits for, reports and stops them
the same way, and writes one :class:`PidRecord` per started process. The state
folder (``.state/``: pids, logs, data) and the cache folder (``.cache/``: Kafka's
jars, the FerretDB binary) keep the layout below, so a running stack is recognised
by every version of this code.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from deploy.local.settings import StackSettings

KAFKA_VERSION = "4.1.2"
FERRETDB_VERSION = "v1.24.2"
# Our build of it: the version plus the patches in build-ferretdb.sh (indexed _id lookups,
# debug lines formatted only when debug logging is on, `_id` and its `$in` pushed down
# beside other keys, each statement of a bulk update closed when done, a bulk update's or
# delete's writes made in one transaction, query iterators not tracked).
FERRETDB_BUILD = f"{FERRETDB_VERSION}-idindex-lazylog-idpush-bulkfix-onetx-untracked"
DEPLOY_DIR = Path(__file__).resolve().parent  # pom.xml, build-ferretdb.sh, Kafka configuration
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
PORT_CLOSE_TIMEOUT = 15.0
POLL_INTERVAL = 0.25
LOG_TAIL_LINES = 40
START_MARKER = "--- coc stack up: starting "  # opens each run's part of a process log

Output = Callable[[str], None]
HealthCheck = Callable[[], bool]
State = Literal["healthy", "running", "stopped"]
Address = tuple[str, int]


class StackError(Exception):
    """A failure the user can act on; the message says what and where to look."""


@dataclass(frozen=True)
class ProcessSpec:
    """One background process of the stack.

    ``addresses`` are the ports it listens on, the first being the one shown
    by ``status``: ``up`` refuses to start it while one of them is taken by a
    process the stack does not know, ``down`` waits until all are closed.
    ``health`` answers quickly whether the process serves requests.
    ``prepare`` runs before each start (render config, format storage).
    ``logs`` are files the process writes itself, besides its captured
    stdout/stderr; their tails explain a failed start. ``problem`` says why a
    running process is not healthy (a service's stuck subscription).
    With ``wait`` off, ``up`` starts it and waits for it only after the next
    spec that waits (a Kafka cluster's first nodes answer once a quorum
    runs); ``ready`` runs once it is healthy (the cluster's topics and ACLs).
    """

    name: str
    argv: tuple[str, ...]
    addresses: tuple[Address, ...]
    health: HealthCheck
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    prepare: Callable[[], None] | None = None
    logs: tuple[Path, ...] = ()
    problem: Callable[[], str | None] | None = None  # why it is not healthy, when it can say
    start_timeout: float = START_TIMEOUT
    stop_timeout: float = STOP_TIMEOUT
    wait: bool = True
    ready: Callable[[], None] | None = None
    stop_together: bool = False  # `down` signals all such processes at once (a Kafka quorum)


@dataclass(frozen=True)
class PidRecord:
    """What ``up`` writes for each process it started, and all ``down`` trusts."""

    name: str
    pid: int
    proc_start: int | None  # start time from /proc, in clock ticks since boot
    started_at: float
    addresses: tuple[Address, ...]
    argv: tuple[str, ...]
    stop_timeout: float = STOP_TIMEOUT


@dataclass(frozen=True)
class ProcessStatus:
    """One row of ``coc stack status``."""

    name: str
    pid: int | None
    address: str
    state: State
    note: str = ""


@dataclass(frozen=True)
class StackPaths:
    """Every folder and file of the stack, derived from the two settings folders."""

    state: Path
    cache: Path

    @classmethod
    def of(cls, settings: StackSettings) -> StackPaths:
        return cls(settings.state_dir.resolve(), settings.cache_dir.resolve())

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def kafka_libs(self) -> Path:
        return self.cache / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def kafka_config_dir(self) -> Path:
        return self.state / "kafka"

    @property
    def kafka_data(self) -> Path:
        return self.state / "kafka-data"

    @property
    def kafka_logs(self) -> Path:
        return self.logs / "kafka"

    @property
    def ferretdb_bin(self) -> Path:
        return self.cache / f"ferretdb-{FERRETDB_BUILD}" / "ferretdb"

    @property
    def ferretdb_state(self) -> Path:
        return self.state / "ferretdb"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.json"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"


@contextlib.contextmanager
def locked(lock_file: Path, what: str, out: Output) -> Iterator[None]:
    """Hold an exclusive lock so two `coc stack` commands never work on one folder at once.

    Several people (or test runs) may share a tree; without it two installs
    build into the same folder, or two `up`s start the same process twice.
    The kernel drops the lock when the holder dies, so it is never stale.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out(f"stack: another `coc stack` command holds {lock_file}, waiting ({what})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tail(log: Path) -> str:
    return last_lines(log.read_text(errors="replace"))


def last_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def show(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
