"""How the stack starts a service: `python -m cli service NAME` loads no other command group."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

GROUPS = ("archive", "client", "demo", "keys", "policy", "samples", "stack", "users", "workbench")

PROBE = """
import sys
from cli.main import build_parser
args = build_parser("service").parse_args(["service", "status"])
assert args.func.__name__ == "run_service", args.func
print(" ".join(sorted(m for m in sys.modules if m.startswith("cli."))))
"""


def test_a_service_process_parses_its_command_without_loading_the_other_groups() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(done.stdout.split())
    assert "cli.service" in loaded
    assert not loaded & {f"cli.{group}" for group in GROUPS}, sorted(loaded)


def test_every_other_command_still_has_the_whole_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    assert all(word in shown for word in ("stack", "verify", "audit", "service", "users"))
