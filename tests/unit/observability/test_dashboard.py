"""The Grafana dashboard and the alert rules name only metrics the services expose.

The names come from the registries of the services' own apps (``create_app``,
as ``python -m services NAME`` builds them), never from a list kept by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.launch import SERVICES, service_app

pytestmark = pytest.mark.unit

MONITORING = Path(__file__).resolve().parents[3] / "deploy" / "monitoring"
# Series Prometheus makes itself for every target, beside what the target serves.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
CONCERNS = [
    "Services",
    "Messages",
    "Handling latency",
    "Lag",
    "Delivery",
    "Seals",
    "HTTP",
    "Kafka replication",
]
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]|\boffset\s+-?[0-9][0-9a-z]*")
_GROUPINGS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAMES = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\s*\(|[A-Za-z0-9_:])")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords and label names left out)."""
    bare = _GROUPINGS.sub(" ", _RANGES.sub(" ", _MATCHERS.sub(" ", _STRINGS.sub(" ", expr))))
    return {name for name in _NAMES.findall(bare) if name not in KEYWORDS}


@pytest.fixture(scope="module")
def exposed() -> set[str]:
    names: set[str] = set()
    for name in SERVICES:
        app = service_app(name)
        assert any(getattr(route, "path", None) == "/metrics" for route in app.routes), f"{name}: no /metrics"
        names |= app.state.stage.metrics.names()
    return names


def dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "grafana-ecoc.json").read_text())


def test_the_reading_of_an_expression_finds_its_metrics_and_nothing_else() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, stage) (rate(a_seconds_bucket{route!="/x", s=~"b.*"}[5m])))'
    assert metric_names(expr) == {"a_seconds_bucket"}
    assert metric_names("sum by (t) (x) > 0 and sum by (t) (deriv(y[5m])) > 0 unless z offset 1h") == {
        "x",
        "y",
        "z",
    }


def test_every_panel_of_the_dashboard_names_only_metrics_the_services_expose(exposed: set[str]) -> None:
    unknown: dict[str, set[str]] = {}
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            found = metric_names(target["expr"])
            assert found, f"{panel['title']}: no metric in {target['expr']}"
            if found - exposed - PROMETHEUS_OWN:
                unknown[panel["title"]] = found - exposed - PROMETHEUS_OWN
    assert not unknown


def test_the_dashboard_has_one_row_per_concern_each_with_panels_that_query() -> None:
    rows: list[tuple[str, int]] = []
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            rows.append((panel["title"], 0))
        else:
            assert panel["targets"] and rows, f"{panel['title']}: a panel outside a row, or with no query"
            rows[-1] = (rows[-1][0], rows[-1][1] + 1)
    assert [title for title, _ in rows] == CONCERNS
    assert all(count > 0 for _, count in rows)
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_every_alert_rule_names_only_metrics_the_services_expose(exposed: set[str]) -> None:
    rules = [
        rule
        for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    assert rules
    for rule in rules:
        found = metric_names(rule["expr"])
        assert found and found <= exposed | PROMETHEUS_OWN, (
            f"{rule['alert']}: {found - exposed - PROMETHEUS_OWN}"
        )
