"""The local stack without docker: Kafka (KRaft) and FerretDB as background processes.

``coc stack up`` installs both once into the cache folder (Kafka's jars from
Maven Central, FerretDB built from its Go module), starts each process
detached, records its pid in the state folder and waits until it answers.
``coc stack down`` stops exactly the processes whose pids it recorded.

The stack is a list of :class:`ProcessSpec`; more processes (the services)
join through ``extra_specs`` and get the same start, wait, status and stop.
A pid file also remembers the process's start time, so a pid reused by an
unrelated process after a crash or a reboot is never taken for ours and never
signalled.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import string
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, NoReturn, TypeVar

from shared.settings import PROJECT_ROOT, CocSettings

KAFKA_VERSION = "4.1.2"
FERRETDB_VERSION = "v1.24.2"
# Our build of it: the version plus the patch in build-ferretdb.sh (indexed _id lookups).
FERRETDB_BUILD = f"{FERRETDB_VERSION}-idindex"
DEPLOY_DIR = PROJECT_ROOT / "deploy" / "local"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
PORT_CLOSE_TIMEOUT = 15.0
POLL_INTERVAL = 0.25
LOG_TAIL_LINES = 40
START_MARKER = "--- coc stack up: starting "  # opens each run's part of a process log

# Kafka's own start script's JVM options, with a small fixed heap for a laptop.
# Startup is ~4-8 s on two cores, mostly class loading; C1-only JIT, SerialGC and an
# AppCDS archive were each tried and saved under a second, within the noise.
KAFKA_JVM_OPTIONS = (
    "-Xmx512m",
    "-Xms512m",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

Output = Callable[[str], None]
HealthCheck = Callable[[], bool]
State = Literal["healthy", "running", "stopped"]
Address = tuple[str, int]
T = TypeVar("T")


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
    stdout/stderr; their tails explain a failed start.
    """

    name: str
    argv: tuple[str, ...]
    addresses: tuple[Address, ...]
    health: HealthCheck
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    prepare: Callable[[], None] | None = None
    logs: tuple[Path, ...] = ()
    start_timeout: float = START_TIMEOUT
    stop_timeout: float = STOP_TIMEOUT


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
    def of(cls, settings: CocSettings) -> StackPaths:
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


# --- install -----------------------------------------------------------------


def install(settings: CocSettings, out: Output = print) -> None:
    """Fetch Kafka's jars and build FerretDB into the cache folder, each only once."""
    paths = StackPaths.of(settings)
    paths.logs.mkdir(parents=True, exist_ok=True)
    with _locked(paths.cache / ".install.lock", "install", out):
        _install_kafka(paths, out)
        _install_ferretdb(paths, out)


@contextlib.contextmanager
def _locked(lock_file: Path, what: str, out: Output) -> Iterator[None]:
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


def _install_kafka(paths: StackPaths, out: Output) -> None:
    """Resolve the broker's jars with Maven into a temporary folder, then rename it.

    The rename makes an interrupted download look absent rather than complete.
    """
    marker = paths.kafka_libs / f"kafka_2.13-{KAFKA_VERSION}.jar"
    if marker.is_file():
        out(f"kafka: {KAFKA_VERSION} jars present in {paths.kafka_libs}")
        return
    mvn = _require_tool("mvn", "Maven, to fetch Kafka's jars (apt-get install maven)")
    staging = paths.kafka_libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    out(f"kafka: fetching Kafka {KAFKA_VERSION} jars from Maven Central into {paths.kafka_libs}")
    argv = [
        mvn, "-q", "-B", "-f", str(DEPLOY_DIR / "pom.xml"),
        f"-Dkafka.version={KAFKA_VERSION}", "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    began = time.monotonic()
    _run_install_step("kafka", argv, paths.log_file("install-kafka"))
    shutil.rmtree(paths.kafka_libs, ignore_errors=True)
    staging.rename(paths.kafka_libs)
    out(f"kafka: jars fetched in {time.monotonic() - began:.0f}s")


def _install_ferretdb(paths: StackPaths, out: Output) -> None:
    """Build FerretDB from its Go module with deploy/local/build-ferretdb.sh."""
    if os.access(paths.ferretdb_bin, os.X_OK):
        out(f"ferretdb: {FERRETDB_BUILD} binary present at {paths.ferretdb_bin}")
        return
    _require_tool("go", "Go 1.24 or newer, to build FerretDB")
    log = paths.log_file("install-ferretdb")
    out(f"ferretdb: building {FERRETDB_BUILD} from its Go module (a few minutes), log {log}")
    argv = ["bash", str(DEPLOY_DIR / "build-ferretdb.sh"), FERRETDB_VERSION, str(paths.cache), FERRETDB_BUILD]
    began = time.monotonic()
    _run_install_step("ferretdb", argv, log)
    out(f"ferretdb: built in {time.monotonic() - began:.0f}s")


def _run_install_step(name: str, argv: Sequence[str], log: Path) -> None:
    """Run one install command with its output in a log, shown only when it fails."""
    with log.open("w") as sink:
        result = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise StackError(f"{name}: install failed (exit {result.returncode}), end of {log}:\n{_tail(log)}")


def _require_tool(name: str, what: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise StackError(f"'{name}' is not on PATH; the stack needs {what}")
    return found


# --- the two processes of the stack ------------------------------------------------


def stack_specs(settings: CocSettings) -> list[ProcessSpec]:
    """The base stack in start order; ``down`` stops in the reverse order."""
    paths = StackPaths.of(settings)
    return [ferretdb_spec(settings, paths), kafka_spec(settings, paths)]


def kafka_spec(settings: CocSettings, paths: StackPaths) -> ProcessSpec:
    """One KRaft node, broker and controller, on settings.kafka_bootstrap."""
    host, port = settings.kafka_host_port
    config = paths.kafka_config_dir / "server.properties"
    argv = (
        _java(),
        *KAFKA_JVM_OPTIONS,
        f"-Dkafka.logs.dir={paths.kafka_logs}",
        f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.xml'}",
        "-cp",
        f"{paths.kafka_libs}/*",
        "kafka.Kafka",
        str(config),
    )
    return ProcessSpec(
        name="kafka",
        argv=argv,
        addresses=((host, port), (host, settings.kafka_controller_port)),
        health=partial(kafka_healthy, settings.kafka_bootstrap),
        prepare=partial(prepare_kafka, settings, paths),
        logs=(paths.kafka_logs / "server.log",),
    )


def ferretdb_spec(settings: CocSettings, paths: StackPaths) -> ProcessSpec:
    """FerretDB on its SQLite backend, listening where settings.mongo_url points."""
    host, port = settings.mongo_host_port
    addresses: list[Address] = [(host, port)]
    debug = settings.ferretdb_debug_addr
    if debug not in ("", "-"):
        addresses.append(_split_address(debug))
    argv = (
        str(paths.ferretdb_bin),
        "--handler=sqlite",
        f"--sqlite-url=file:{paths.ferretdb_state / 'data'}/",
        f"--state-dir={paths.ferretdb_state}",
        f"--listen-addr={host}:{port}",
        f"--debug-addr={debug or '-'}",
        "--telemetry=disable",
        "--log-format=text",
        "--log-level=warn",  # INFO logs every connection, each health probe included
    )
    return ProcessSpec(
        name="ferretdb",
        argv=argv,
        addresses=tuple(addresses),
        health=partial(mongo_healthy, settings.mongo_url),
        prepare=partial(_make_dirs, paths.ferretdb_state / "data"),
    )


def prepare_kafka(settings: CocSettings, paths: StackPaths) -> None:
    """Render server.properties from settings and format the data folder the first time."""
    host, port = settings.kafka_host_port
    paths.kafka_config_dir.mkdir(parents=True, exist_ok=True)
    template = string.Template((DEPLOY_DIR / "server.properties.template").read_text())
    config = paths.kafka_config_dir / "server.properties"
    config.write_text(
        template.substitute(
            host=host,
            port=port,
            controller_host=host,
            controller_port=settings.kafka_controller_port,
            data_dir=paths.kafka_data,
        )
    )
    if not (paths.kafka_data / "meta.properties").is_file():
        _format_kafka_storage(paths, config)


def _format_kafka_storage(paths: StackPaths, config: Path) -> None:
    """Format the KRaft log folder as a standalone controller quorum of one."""
    cluster_id = _cluster_id(paths)
    argv = [
        _java(), "-Xmx256m", f"-Dkafka.logs.dir={paths.kafka_logs}",
        f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.xml'}",
        "-cp", f"{paths.kafka_libs}/*", "kafka.tools.StorageTool",
        "format", "--standalone", "-t", cluster_id, "-c", str(config),
    ]  # fmt: skip
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise StackError(f"kafka: cannot run {argv[0]} (Java 17 or newer is needed): {exc}") from exc
    if result.returncode != 0:
        raise StackError(f"kafka: formatting {paths.kafka_data} failed:\n{result.stdout}{result.stderr}")


def _cluster_id(paths: StackPaths) -> str:
    """The cluster id, made once and kept in the state folder.

    Kafka's format is a URL-safe base64 UUID without padding; like Kafka's own
    generator this avoids ids starting with '-', which read as a CLI option.
    """
    stored = paths.kafka_config_dir / "cluster-id"
    if stored.is_file():
        return stored.read_text().strip()
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    stored.write_text(cluster_id + "\n")
    return cluster_id


def _java() -> str:
    """JAVA_HOME's java, else the one on PATH; a missing one fails at start, not in status."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java") or "java"


def _make_dirs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)


def _split_address(address: str) -> Address:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


# --- health checks -------------------------------------------------------------


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def kafka_healthy(bootstrap: str) -> bool:
    """True when the broker answers a metadata request that lists at least one broker."""
    if not port_open(*_split_address(bootstrap.split(",")[0])):
        return False
    with _quiet_logger("aiokafka"):
        try:
            return _run_coroutine(lambda: asyncio.wait_for(_kafka_brokers(bootstrap), 5)) > 0
        except Exception:  # any failure means "not answering yet"
            return False


def _run_coroutine(make: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run a coroutine to its end, also when called from code already inside an event loop.

    asyncio.run refuses to nest, so an async caller (a test fixture, a service)
    gets the probe run on a short-lived thread with its own loop instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _kafka_brokers(bootstrap: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()


def http_healthy(url: str) -> bool:
    """True when an HTTP endpoint (a service's /healthz) answers 2xx; for service specs."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= int(response.status) < 300
    except (OSError, ValueError):
        return False


def mongo_healthy(url: str) -> bool:
    """True when the MongoDB-compatible server answers a ping."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(
        url, serverSelectionTimeoutMS=1500, connectTimeoutMS=1500
    )
    try:
        client.admin.command("ping")
        return True
    except Exception:  # any failure means "not answering yet"
        return False
    finally:
        client.close()


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence a client library while it probes a server that may not be up yet."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- pid records -----------------------------------------------------------------


def read_records(paths: StackPaths) -> list[PidRecord]:
    """Every process the stack started and has not stopped yet, oldest first."""
    records = [_read_record(file) for file in sorted(paths.pids.glob("*.json"))]
    return sorted((r for r in records if r is not None), key=lambda r: r.started_at)


def _read_record(file: Path) -> PidRecord | None:
    try:
        data = json.loads(file.read_text())
        return PidRecord(
            name=data["name"],
            pid=int(data["pid"]),
            proc_start=data.get("proc_start"),
            started_at=float(data["started_at"]),
            addresses=tuple((h, int(p)) for h, p in data["addresses"]),
            argv=tuple(data["argv"]),
            stop_timeout=float(data.get("stop_timeout", STOP_TIMEOUT)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(paths: StackPaths, record: PidRecord) -> None:
    paths.pids.mkdir(parents=True, exist_ok=True)
    data = {
        "name": record.name,
        "pid": record.pid,
        "proc_start": record.proc_start,
        "started_at": record.started_at,
        "addresses": [list(a) for a in record.addresses],
        "argv": list(record.argv),
        "stop_timeout": record.stop_timeout,
    }
    temp = paths.pid_file(record.name).with_suffix(".tmp")
    temp.write_text(json.dumps(data, indent=2) + "\n")
    temp.replace(paths.pid_file(record.name))


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """State letter and start time (clock ticks since boot) of a live pid, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def is_alive(record: PidRecord) -> bool:
    """True when the recorded process still runs: same pid and same start time.

    A zombie counts as gone: it serves nothing and holds no port.
    """
    if not Path("/proc").is_dir():  # not Linux: best effort
        try:
            os.kill(record.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stat = _proc_stat(record.pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return record.proc_start is None or stat[1] == record.proc_start


# --- up ------------------------------------------------------------------------


def up(
    settings: CocSettings,
    extra_specs: Sequence[ProcessSpec] = (),
    out: Output = print,
) -> None:
    """Install, then start every process that is not running, each after the previous is healthy.

    Idempotent: a healthy process is left alone. A start that fails or times
    out stops what it started and raises StackError with the log's tail.
    """
    paths = StackPaths.of(settings)
    with _locked(paths.state / ".stack.lock", "up", out):
        install(settings, out)
        for spec in [*stack_specs(settings), *extra_specs]:
            _bring_up(spec, paths, out)
    out("stack: up")


def _bring_up(spec: ProcessSpec, paths: StackPaths, out: Output) -> None:
    record = _read_record(paths.pid_file(spec.name))
    if record is not None and is_alive(record):
        if spec.health():
            out(f"{spec.name}: already running (pid {record.pid}, {_show(spec.addresses[0])})")
            return
        out(f"{spec.name}: running (pid {record.pid}) but not answering yet, waiting")
        _wait_healthy(spec, record, paths, out, {})
        return
    if record is not None:
        out(f"{spec.name}: pid {record.pid} is gone (stale pid file), starting again")
        paths.pid_file(spec.name).unlink(missing_ok=True)
    log_sizes = {log: log.stat().st_size if log.is_file() else 0 for log in spec.logs}
    record = _start(spec, paths, out)
    _wait_healthy(spec, record, paths, out, log_sizes)


def _start(spec: ProcessSpec, paths: StackPaths, out: Output) -> PidRecord:
    """Spawn the process detached, with its output appended to its log file."""
    _check_ports_free(spec)
    if spec.prepare is not None:
        spec.prepare()
    log = paths.log_file(spec.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as sink:
        sink.write(f"{START_MARKER}{spec.name} at {time.ctime()}\n")
        sink.flush()
        try:
            process = subprocess.Popen(
                spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd or paths.state,
                env={**os.environ, **spec.env},
                start_new_session=True,  # own session: no terminal signals, outlives `coc`
            )
        except OSError as exc:
            raise StackError(f"{spec.name}: cannot run {spec.argv[0]}: {exc}") from exc
    stat = _proc_stat(process.pid)
    record = PidRecord(
        name=spec.name,
        pid=process.pid,
        proc_start=stat[1] if stat else None,
        started_at=time.time(),
        addresses=spec.addresses,
        argv=spec.argv,
        stop_timeout=spec.stop_timeout,
    )
    _write_record(paths, record)
    out(f"{spec.name}: started pid {record.pid} on {_show(spec.addresses[0])}, log {log}")
    return record


def _check_ports_free(spec: ProcessSpec) -> None:
    for host, port in spec.addresses:
        if port_open(host, port):
            raise StackError(
                f"{spec.name}: {host}:{port} is already taken by a process that `coc stack`"
                " did not start; stop it or point the COC_ settings at another port"
            )


def _wait_healthy(
    spec: ProcessSpec,
    record: PidRecord,
    paths: StackPaths,
    out: Output,
    log_sizes: Mapping[Path, int],
) -> None:
    """Poll the health check until it passes; fail early if the process dies.

    ``log_sizes`` are the sizes of the spec's own logs before this start, so a
    failure shows only what this start wrote.
    """
    began = time.monotonic()
    deadline = began + spec.start_timeout
    while time.monotonic() < deadline:
        if not is_alive(record):
            _fail_start(spec, record, paths, "exited during start", log_sizes)
        if spec.health():
            out(f"{spec.name}: healthy after {time.monotonic() - began:.1f}s")
            return
        time.sleep(POLL_INTERVAL)
    why = f"not answering after {spec.start_timeout:.0f}s"
    _fail_start(spec, record, paths, why, log_sizes)


def _fail_start(
    spec: ProcessSpec,
    record: PidRecord,
    paths: StackPaths,
    why: str,
    log_sizes: Mapping[Path, int],
) -> NoReturn:
    """Stop what was started and raise with the end of what this start logged, which says why.

    Older runs' lines are left out: they would explain an earlier problem.
    """
    _stop(record, paths, lambda _line: None)
    parts = [f"{spec.name}: {why}; it is stopped again."]
    own_log = paths.log_file(spec.name)
    text = _read_from(own_log, 0).rpartition(START_MARKER)[2].partition("\n")[2]
    if text.strip():
        parts.append(f"--- end of {own_log}:\n{_last_lines(text)}")
    for log in spec.logs:
        text = _read_from(log, log_sizes.get(log, 0))
        if text.strip():
            parts.append(f"--- end of {log}:\n{_last_lines(text)}")
    raise StackError("\n".join(parts))


def _read_from(log: Path, offset: int) -> str:
    """The log's text after offset; all of it if the log was rotated (shorter than offset)."""
    if not log.is_file():
        return ""
    with log.open("rb") as source:
        if source.seek(0, os.SEEK_END) >= offset:
            source.seek(offset)
        else:
            source.seek(0)
        return source.read().decode(errors="replace")


def _tail(log: Path) -> str:
    return _last_lines(log.read_text(errors="replace"))


def _last_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _show(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


# --- down ------------------------------------------------------------------------


def down(settings: CocSettings, out: Output = print) -> list[Address]:
    """Stop every process the stack recorded, in reverse start order; return ports still open.

    The order is that of ``up`` (FerretDB, Kafka, then the services), not the
    time each was started: after Kafka alone was restarted, the services still
    stop before it, so they do not spend their stop timeout on a broker that is gone.
    Only recorded pids are signalled (never a name), so a Kafka or MongoDB
    started some other way is left alone; it shows up in the returned list.
    """
    paths = StackPaths.of(settings)
    with _locked(paths.state / ".stack.lock", "down", out):
        records = read_records(paths)
        if not records:
            out(f"stack: nothing to stop (no pid files in {paths.pids})")
        for record in _stop_order(records, [spec.name for spec in stack_specs(settings)]):
            _stop(record, paths, out)
    watched = {a for spec in stack_specs(settings) for a in spec.addresses}
    watched.update(a for record in records for a in record.addresses)
    still_open = sorted(a for a in watched if port_open(*a))
    out("stack: down" if not still_open else "stack: down, but ports still open")
    return still_open


def _stop_order(records: Sequence[PidRecord], base: Sequence[str]) -> list[PidRecord]:
    """Processes outside the base stack first (newest first), then the base stack backwards."""

    def rank(record: PidRecord) -> tuple[int, float]:
        layer = base.index(record.name) if record.name in base else len(base)
        return (layer, record.started_at)

    return sorted(records, key=rank, reverse=True)


def _stop(record: PidRecord, paths: StackPaths, out: Output) -> None:
    """SIGTERM, wait, SIGKILL after the recorded timeout; then wait for its ports to close."""
    timeout = record.stop_timeout
    if not is_alive(record):
        out(f"{record.name}: not running (pid {record.pid} is gone)")
    else:
        out(f"{record.name}: stopping pid {record.pid}")
        _signal(record, signal.SIGTERM)
        if not _wait_until(lambda: not is_alive(record), timeout):
            out(f"{record.name}: still running after {timeout:.0f}s, sending SIGKILL")
            _signal(record, signal.SIGKILL)
            if not _wait_until(lambda: not is_alive(record), 10):
                raise StackError(f"{record.name}: pid {record.pid} survived SIGKILL")
        _wait_until(lambda: not any(port_open(*a) for a in record.addresses), PORT_CLOSE_TIMEOUT)
        out(f"{record.name}: stopped")
    paths.pid_file(record.name).unlink(missing_ok=True)


def _signal(record: PidRecord, sig: signal.Signals) -> None:
    """Signal the process group it leads (it was started in its own session), else the pid.

    The group also reaches any child it spawned, so no listener is left behind.
    """
    try:
        if os.getpgid(record.pid) == record.pid:
            os.killpg(record.pid, sig)
        else:
            os.kill(record.pid, sig)
    except ProcessLookupError:
        pass


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


# --- status ----------------------------------------------------------------------


def status(settings: CocSettings, extra_specs: Sequence[ProcessSpec] = ()) -> list[ProcessStatus]:
    """The state of each known process, plus any other process the stack recorded."""
    paths = StackPaths.of(settings)
    specs = [*stack_specs(settings), *extra_specs]
    rows = [_spec_status(spec, paths) for spec in specs]
    known = {spec.name for spec in specs}
    rows += [_record_status(r) for r in read_records(paths) if r.name not in known]
    return rows


def _spec_status(spec: ProcessSpec, paths: StackPaths) -> ProcessStatus:
    record = _read_record(paths.pid_file(spec.name))
    address = _show(spec.addresses[0])
    if record is None or not is_alive(record):
        note = "stale pid file" if record is not None else ""
        if any(port_open(*a) for a in spec.addresses):
            note = "port taken by a process the stack did not start"
        return ProcessStatus(spec.name, None, address, "stopped", note)
    state: State = "healthy" if spec.health() else "running"
    return ProcessStatus(spec.name, record.pid, address, state)


def _record_status(record: PidRecord) -> ProcessStatus:
    """A recorded process with no spec at hand: healthy means its ports accept connections."""
    address = _show(record.addresses[0]) if record.addresses else "-"
    if not is_alive(record):
        return ProcessStatus(record.name, None, address, "stopped", "stale pid file")
    healthy = all(port_open(*a) for a in record.addresses)
    return ProcessStatus(record.name, record.pid, address, "healthy" if healthy else "running")
