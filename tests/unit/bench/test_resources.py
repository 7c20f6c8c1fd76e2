"""What the pipeline bench reads of the stack's processes: CPU seconds and peak memory, from /proc."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bench.resources import Usage, cpu_seconds, measuring, resident_mb, stack_processes
from tests.conftest import eventually

pytestmark = pytest.mark.unit


def test_the_stacks_processes_come_from_its_pid_files_and_a_broken_one_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "kafka.json").write_text(json.dumps({"name": "kafka", "pid": 101}))
    (tmp_path / "status.json").write_text(json.dumps({"name": "status", "pid": 202}))
    (tmp_path / "broken.json").write_text("{")
    assert stack_processes(tmp_path) == {"kafka": 101, "status": 202}


async def test_cpu_burnt_inside_the_block_is_counted_and_memory_is_the_peak_seen() -> None:
    async with measuring({"me": os.getpid()}, every=0.01) as usage:
        began = time.process_time()
        while time.process_time() - began < 0.3:
            sum(range(10_000))
        hoard = bytearray(50_000_000)  # 50 MB resident while the block runs
        hoard[::4096] = b"x" * len(hoard[::4096])
        holding = resident_mb(os.getpid())
        assert holding is not None
        await eventually(  # the sampler runs while the block waits
            lambda: usage.peak_mb.get("me", 0.0) >= holding - 1, every_s=0.01, what="the 50 MB held sampled"
        )
        del hoard
    assert 0.25 <= usage.cpu_s["me"] <= 5.0
    assert usage.peak_mb["me"] >= holding - 1  # the last sample, taken after the hoard went, lowers no peak
    lines = usage.lines(certificates=100)
    assert lines[1].split()[0] == "me" and float(lines[1].split()[2]) == pytest.approx(
        usage.cpu_s["me"] * 10, abs=0.1
    )


def test_a_process_that_is_gone_has_no_figures() -> None:
    assert cpu_seconds(2**22 + 12345) is None and resident_mb(2**22 + 12345) is None


def test_a_process_measured_apart_is_shown_after_the_total_and_not_in_it() -> None:
    usage = Usage(cpu_s={"kafka": 3.0, "render": 1.0, "(bench)": 2.0}, apart=frozenset({"(bench)"}))
    names = [line.split()[0] for line in usage.lines(certificates=1000)[1:]]
    assert names == ["kafka", "render", "all", "(bench)"]
    assert usage.lines(certificates=1000)[3].split()[1] == "4.0"
