"""`coc status` as a person reads it: the delivery beside the state, and why each step happened."""

from __future__ import annotations

from typing import Any

import pytest

from cli import client
from cli.main import main

pytestmark = pytest.mark.unit

RECORD = {
    "vin": "VIN1",
    "revision": 2,
    "state": "archived",
    "stage": "archive",
    "findings": [],
    "delivery": {
        "state": "delivery_rejected",
        "destination": "nap-lt",
        "reason": "ActualMass above the approved maximum",
        "owner": "production",
    },
    "timeline": [
        {"time": "t1", "stage": "render", "state": "failed", "reason": "too large " * 40},
        {"time": "t2", "stage": "archive", "state": "archived", "reason": None},
    ],
}


class Answer:
    def json(self) -> dict[str, Any]:
        return RECORD


def test_status_shows_the_delivery_and_each_steps_reason_on_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(client.Client, "call", lambda *_a, **_k: Answer())
    assert main(["status", "VIN1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        "  delivery to nap-lt: delivery_rejected (ActualMass above the approved maximum); production must act"
    )
    failed = next(line for line in lines if "failed" in line)
    assert "too large" in failed and failed.endswith("…") and len(failed) < 200
    assert lines[-1].rstrip().endswith("archived")


def test_audit_breaks_are_summed_by_kind_whatever_their_hashes_and_revisions() -> None:
    from cli.archive import kind_of

    a = kind_of("the approval snapshot it names (" + "a" * 64 + ") is not stored")
    b = kind_of("the approval snapshot it names (" + "b" * 64 + ") is not stored")
    assert a == b == "the approval snapshot it names (…) is not stored"
    assert kind_of("revisions [1, 2] are in the chain") == kind_of("revisions [3] are in the chain")
