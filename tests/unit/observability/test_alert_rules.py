"""The alert rules pass Prometheus's own checks and unit tests (``promtool``, from Debian's ``prometheus``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(
        shutil.which("promtool") is None, reason="make test installs promtool (Debian prometheus)"
    ),
]

MONITORING = Path(__file__).resolve().parents[3] / "deploy" / "monitoring"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=MONITORING, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_are_valid_rules() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_alert_fires_when_it_should_and_not_otherwise() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_of_the_rules_is_unit_tested() -> None:
    rules = (MONITORING / "alerts.yml").read_text()
    tests = (MONITORING / "alerts.test.yml").read_text()
    alerts = {
        line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("- alert:")
    }
    assert len(alerts) >= 6
    assert all(f"alertname: {alert}" in tests for alert in alerts), alerts
