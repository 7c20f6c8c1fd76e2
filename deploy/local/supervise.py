"""Up, down and status of the local stack: background processes with pid files, no docker.

``up`` installs the binaries once (``install``), then starts each process that is
not running, detached, records its pid in the state folder and waits until it
answers. ``down`` stops exactly the processes whose pids it recorded. A pid file
also remembers the process's start time, so a pid reused by an unrelated process
after a crash or a reboot is never taken for ours and never signalled.

More processes (the services, ``deploy.local.services``) join through
``extra_specs`` and get the same start, wait, status and stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from deploy.local.health import port_open
from deploy.local.infra import stack_specs
from deploy.local.install import install
from deploy.local.layout import (
    POLL_INTERVAL,
    PORT_CLOSE_TIMEOUT,
    START_MARKER,
    STOP_TIMEOUT,
    Address,
    Output,
    PidRecord,
    ProcessSpec,
    ProcessStatus,
    StackError,
    StackPaths,
    last_lines,
    locked,
    show,
)
from deploy.local.settings import StackSettings

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
    settings: StackSettings,
    extra_specs: Sequence[ProcessSpec] = (),
    out: Output = print,
) -> None:
    """Install, then start every process that is not running, each after the previous is healthy.

    Idempotent: a healthy process is left alone. A start that fails or times
    out stops what it started and raises StackError with the log's tail.
    """
    paths = StackPaths.of(settings)
    with locked(paths.state / ".stack.lock", "up", out):
        install(settings, out)
        deferred: list[tuple[ProcessSpec, PidRecord, dict[Path, int]]] = []
        for spec in [*stack_specs(settings), *extra_specs]:
            started = _bring_up(spec, paths, out)
            if started is not None and not spec.wait:
                deferred.append((spec, *started))
                continue
            if started is not None:
                _wait_healthy(spec, started[0], paths, out, started[1])
            for waiting, record, sizes in deferred:
                _wait_healthy(waiting, record, paths, out, sizes)
            deferred.clear()
            if spec.ready is not None:
                spec.ready()
    out("stack: up")


def _bring_up(spec: ProcessSpec, paths: StackPaths, out: Output) -> tuple[PidRecord, dict[Path, int]] | None:
    """Start the process unless it runs; return what to wait on (its record and logs' sizes), None when healthy."""
    record = _read_record(paths.pid_file(spec.name))
    if record is not None and is_alive(record):
        if spec.health():
            out(f"{spec.name}: already running (pid {record.pid}, {show(spec.addresses[0])})")
            return None
        out(f"{spec.name}: running (pid {record.pid}) but not answering yet, waiting")
        return record, {}
    if record is not None:
        out(f"{spec.name}: pid {record.pid} is gone (stale pid file), starting again")
        paths.pid_file(spec.name).unlink(missing_ok=True)
    log_sizes = {log: log.stat().st_size if log.is_file() else 0 for log in spec.logs}
    return _start(spec, paths, out), log_sizes


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
    out(f"{spec.name}: started pid {record.pid} on {show(spec.addresses[0])}, log {log}")
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
        parts.append(f"--- end of {own_log}:\n{last_lines(text)}")
    for log in spec.logs:
        text = _read_from(log, log_sizes.get(log, 0))
        if text.strip():
            parts.append(f"--- end of {log}:\n{last_lines(text)}")
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


# --- down ------------------------------------------------------------------------


def down(settings: StackSettings, out: Output = print) -> list[Address]:
    """Stop every process the stack recorded, in reverse start order; return ports still open.

    The order is that of ``up`` (FerretDB, Kafka, then the services), not the
    time each was started: after Kafka alone was restarted, the services still
    stop before it, so they do not spend their stop timeout on a broker that is gone.
    Only recorded pids are signalled (never a name), so a Kafka or MongoDB
    started some other way is left alone; it shows up in the returned list.
    """
    paths = StackPaths.of(settings)
    with locked(paths.state / ".stack.lock", "down", out):
        records = read_records(paths)
        if not records:
            out(f"stack: nothing to stop (no pid files in {paths.pids})")
        base = stack_specs(settings)
        together = {spec.name for spec in base if spec.stop_together}
        signalled = False
        for record in _stop_order(records, [spec.name for spec in base]):
            if record.name in together and not signalled:
                # A Kafka cluster's last node cannot shut down cleanly once its quorum is gone:
                # all nodes are told at once, then each is waited for.
                for member in records:
                    if member.name in together and is_alive(member):
                        _signal(member, signal.SIGTERM)
                signalled = True
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


def status(settings: StackSettings, extra_specs: Sequence[ProcessSpec] = ()) -> list[ProcessStatus]:
    """The state of each known process, plus any other process the stack recorded."""
    paths = StackPaths.of(settings)
    specs = [*stack_specs(settings), *extra_specs]
    rows = [_spec_status(spec, paths) for spec in specs]
    known = {spec.name for spec in specs}
    rows += [_record_status(r) for r in read_records(paths) if r.name not in known]
    return rows


def _spec_status(spec: ProcessSpec, paths: StackPaths) -> ProcessStatus:
    record = _read_record(paths.pid_file(spec.name))
    address = show(spec.addresses[0])
    if record is None or not is_alive(record):
        note = "stale pid file" if record is not None else ""
        if any(port_open(*a) for a in spec.addresses):
            note = "port taken by a process the stack did not start"
        return ProcessStatus(spec.name, None, address, "stopped", note)
    if spec.health():
        return ProcessStatus(spec.name, record.pid, address, "healthy")
    return ProcessStatus(
        spec.name, record.pid, address, "running", (spec.problem() or "") if spec.problem else ""
    )


def _record_status(record: PidRecord) -> ProcessStatus:
    """A recorded process with no spec at hand: healthy means its ports accept connections."""
    address = show(record.addresses[0]) if record.addresses else "-"
    if not is_alive(record):
        return ProcessStatus(record.name, None, address, "stopped", "stale pid file")
    healthy = all(port_open(*a) for a in record.addresses)
    return ProcessStatus(record.name, record.pid, address, "healthy" if healthy else "running")
