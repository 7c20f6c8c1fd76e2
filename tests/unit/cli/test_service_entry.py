"""The command line starts quickly and stays out of the services.

`coc --help` and every `coc CMD --help` load none of the heavy libraries (they
cost the 2.4 s and 52 MB the help once took); a service process (`python -m
services NAME`, as the stack and `coc service` start them) loads none of the
command line's modules nor its libraries.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from cli import keys, policy, service
from cli.main import build, main

pytestmark = pytest.mark.unit

HEAVY = (
    "fastapi",
    "pydantic",
    "httpx",
    "lxml",
    "aiokafka",
    "faststream",
    "rich",
    "asyncio",
    "shared",
    "services",
)

HELP_PROBE = """
import json, sys
import click
from cli.main import build, main

def paths(command, prefix):
    yield prefix
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from paths(sub, [*prefix, name])

statuses = {" ".join(path): main([*path, "--help"]) for path in paths(build(), [])}
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
"""

SERVICE_PROBE = """
import json, sys
import uvicorn
from services.launch import service_app
service_app("render")
print(json.dumps(sorted(sys.modules)))
"""


def probe(code: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_help_of_every_command_loads_no_heavy_library() -> None:
    seen = probe(HELP_PROBE)
    assert isinstance(seen, dict)
    assert len(seen["statuses"]) > 20 and set(seen["statuses"].values()) == {0}
    loaded = {name.split(".")[0] for name in seen["modules"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_service_process_loads_none_of_the_command_lines_modules() -> None:
    loaded = probe(SERVICE_PROBE)
    assert isinstance(loaded, list)
    assert "services.render.app" in loaded
    assert not [name for name in loaded if name.split(".")[0] in ("cli", "rich", "typer", "devkit", "deploy")]


def test_the_help_names_every_command_and_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert all(word in shown for word in ("stack", "verify", "audit", "service", "users", "Exit status"))


def test_each_commands_help_states_its_exit_statuses() -> None:
    def commands(group: click.Group) -> list[click.Command]:
        found: list[click.Command] = []
        for sub in group.commands.values():
            found += commands(sub) if isinstance(sub, click.Group) else [sub]
        return found

    missing = [command.name for command in commands(build()) if "Exit status" not in (command.epilog or "")]
    assert not missing


def test_the_choices_written_out_for_a_quick_help_are_those_of_the_code() -> None:
    from devkit.keys import ALGORITHMS
    from shared.contracts.policies import ReleasePolicy
    from shared.settings import SERVICE_PORT_OFFSETS

    assert tuple(SERVICE_PORT_OFFSETS) == service.SERVICES
    assert set(keys.ALGORITHM_CHOICES) == set(ALGORITHMS)
    assert tuple(p.value for p in ReleasePolicy) == policy.POLICIES
