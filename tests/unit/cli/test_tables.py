"""The tables of `coc stack status` and `coc policy list`: one row a line a script can split, or JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from cli import policy, stack
from cli.main import main
from deploy.local import supervise
from deploy.local.layout import ProcessStatus
from shared.contracts.policies import PolicyChange, ReleasePolicy

pytestmark = pytest.mark.unit

ROWS = [
    ProcessStatus("kafka", 4242, "127.0.0.1:9092", "healthy"),
    ProcessStatus("ferretdb", None, "127.0.0.1:27017", "stopped", "stale pid file"),
]


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> list[ProcessStatus]:
    rows = list(ROWS)
    monkeypatch.setattr(supervise, "status", lambda *_a, **_k: rows)
    monkeypatch.setattr(stack, "_services", lambda *_a: [])
    return rows


def test_stack_status_prints_a_row_per_process_and_fails_unless_all_are_healthy(
    processes: list[ProcessStatus], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "status"]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["PROCESS", "PID", "ADDRESS", "STATE"],
        ["kafka", "4242", "127.0.0.1:9092", "healthy"],
        ["ferretdb", "-", "127.0.0.1:27017", "stopped", "(stale", "pid", "file)"],
    ]
    assert all(line == line.rstrip() for line in lines)


def test_stack_status_as_json_has_the_same_rows_and_passes_when_all_are_healthy(
    processes: list[ProcessStatus], capsys: pytest.CaptureFixture[str]
) -> None:
    processes[1] = ProcessStatus("ferretdb", 4343, "127.0.0.1:27017", "healthy")

    assert main(["stack", "status", "--json"]) == 0

    rows = json.loads(capsys.readouterr().out)
    assert [(row["name"], row["pid"], row["state"]) for row in rows] == [
        ("kafka", 4242, "healthy"),
        ("ferretdb", 4343, "healthy"),
    ]


def test_policy_list_shows_the_newest_change_per_group_with_who_when_and_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)
    changes = {
        "CHR": PolicyChange(vehicle_group="CHR", policy=ReleasePolicy.HOLD, set_by="Anna Lee", set_at=at),
        "AB": PolicyChange(
            vehicle_group="AB", policy=ReleasePolicy.AUTO, set_by="Bert", set_at=at, comment="audit passed"
        ),
    }

    async def read_table(_settings: Any) -> dict[str, PolicyChange]:
        return changes

    monkeypatch.setattr(policy, "read_table", read_table)

    assert main(["policy", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "AB   auto  Bert at 2026-12-07 09:30:00 UTC      (audit passed)",
        "CHR  hold  Anna Lee at 2026-12-07 09:30:00 UTC",
    ]
    assert main(["policy", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["AB"]["policy"] == "auto" and listed["AB"]["comment"] == "audit passed"
