"""CPU and memory of the stack's processes while a benchmark runs, read from /proc.

The processes are the ones ``coc stack up`` recorded (its pid files): each
service, Kafka and the database. CPU is user + system time of the process (and
of its threads), so two busy cores give up to 2 CPU seconds per second; memory
is the resident set, sampled every ``every`` seconds, its peak kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def stack_processes(pids_dir: Path) -> dict[str, int]:
    """Name → pid of every process the stack recorded (a service's name, kafka, ferretdb)."""
    found: dict[str, int] = {}
    for file in sorted(pids_dir.glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            record = json.loads(file.read_text())
            found[str(record["name"])] = int(record["pid"])
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


def resident_mb(pid: int) -> float | None:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return None
    return pages * PAGE / 1e6


@dataclass
class Usage:
    """CPU seconds used and peak resident memory per process over a measured span."""

    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)
    apart: frozenset[str] = frozenset()  # measured, but shown after "all" and not in it (the bench itself)

    def lines(self, certificates: int) -> list[str]:
        per = 1000 / certificates if certificates else 0.0
        rows = [f"{'process':12} {'CPU s':>8} {'CPU s per 1,000 certs':>22} {'peak RSS MB':>12}"]

        def row(name: str) -> str:
            cpu = self.cpu_s[name]
            return f"{name:12} {cpu:8.1f} {cpu * per:22.1f} {self.peak_mb.get(name, 0):12.0f}"

        counted = sorted((n for n in self.cpu_s if n not in self.apart), key=lambda n: -self.cpu_s[n])
        rows.extend(row(name) for name in counted)
        total = sum(self.cpu_s[name] for name in counted)
        rows.append(f"{'all':12} {total:8.1f} {total * per:22.1f}")
        rows.extend(row(name) for name in sorted(self.apart & self.cpu_s.keys()))
        return rows


@contextlib.asynccontextmanager
async def measuring(
    processes: dict[str, int], every: float = 0.5, apart: frozenset[str] = frozenset()
) -> AsyncIterator[Usage]:
    """Measure ``processes`` from entering the block to leaving it (``apart``: not in the total)."""
    usage = Usage(apart=apart)
    start = {name: cpu_seconds(pid) for name, pid in processes.items()}

    def sample() -> None:
        for name, pid in processes.items():
            mb = resident_mb(pid)
            if mb is not None:
                usage.peak_mb[name] = max(usage.peak_mb.get(name, 0.0), mb)

    async def sampler() -> None:
        while True:
            sample()
            await asyncio.sleep(every)

    task = asyncio.create_task(sampler())
    try:
        yield usage
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sample()
        for name, pid in processes.items():
            began, ended = start[name], cpu_seconds(pid)
            if began is not None and ended is not None:
                usage.cpu_s[name] = ended - began
