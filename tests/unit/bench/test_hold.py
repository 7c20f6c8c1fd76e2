"""``bench.pipeline --hold``: a service off the certificates' path stopped for the timed run, then let go."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.pipeline import held
from tests.conftest import eventually_sync

pytestmark = pytest.mark.unit


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_held_process_is_stopped_inside_the_block_and_runs_again_after_it_even_on_error() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    # A signal takes effect asynchronously: the process's state is watched until it changes.
    try:
        with pytest.raises(RuntimeError), held({"status": sleeper.pid}, ["status"]):
            eventually_sync(
                lambda: state_of(sleeper.pid) == "T", every_s=0.01, what="the held process stopped"
            )
            raise RuntimeError("the run failed")
        eventually_sync(  # running or asleep again: no longer stopped
            lambda: state_of(sleeper.pid) in ("R", "S"), every_s=0.01, what="the process let go"
        )
    finally:
        sleeper.kill()
        sleeper.wait()


def test_holding_a_process_the_stack_does_not_have_names_it() -> None:
    with (
        pytest.raises(SystemExit, match="--hold delivery: the stack has no such process"),
        held({"status": 1}, ["delivery"]),
    ):
        pass
