"""``bench.pipeline --hold``: a service off the certificates' path stopped for the timed run, then let go."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bench.pipeline import held

pytestmark = pytest.mark.unit


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def settled_state(pid: int, stopped: bool) -> str:
    """The process's state once a signal sent to it has taken effect (delivery is asynchronous), or after 5 s."""
    deadline = time.monotonic() + 5
    while (state_of(pid) == "T") != stopped and time.monotonic() < deadline:
        time.sleep(0.01)
    return state_of(pid)


def test_a_held_process_is_stopped_inside_the_block_and_runs_again_after_it_even_on_error() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(RuntimeError), held({"status": sleeper.pid}, ["status"]):
            assert settled_state(sleeper.pid, stopped=True) == "T"
            raise RuntimeError("the run failed")
        assert settled_state(sleeper.pid, stopped=False) in (
            "R",
            "S",
        )  # running or asleep again: no longer stopped
    finally:
        sleeper.kill()
        sleeper.wait()


def test_holding_a_process_the_stack_does_not_have_names_it() -> None:
    with (
        pytest.raises(SystemExit, match="--hold delivery: the stack has no such process"),
        held({"status": 1}, ["delivery"]),
    ):
        pass
