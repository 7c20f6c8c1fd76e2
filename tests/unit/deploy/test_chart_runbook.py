"""docs/operations.md has a runbook entry for every alert rule, where the rule's runbook annotation points."""

from __future__ import annotations

import re

import pytest
import yaml

from shared.settings import PROJECT_ROOT

pytestmark = pytest.mark.unit

ALERTS = yaml.safe_load((PROJECT_ROOT / "deploy" / "monitoring" / "alerts.yml").read_text())
RULES = [rule for group in ALERTS["groups"] for rule in group["rules"] if "alert" in rule]
OPERATIONS = (PROJECT_ROOT / "docs" / "operations.md").read_text()


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE):
        found.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return found


@pytest.mark.parametrize("rule", RULES, ids=[r["alert"] for r in RULES])
def test_each_alert_has_a_runbook_entry_where_its_annotation_points(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    page, _, anchor = str(annotations["runbook"]).partition("#")
    assert page == "docs/operations.md"
    assert anchor == str(rule["alert"]).lower() and anchor in anchors(OPERATIONS)
    entry = OPERATIONS.split(f"### {rule['alert']}\n", 1)[1].split("\n### ", 1)[0]
    # an entry says what the alert means, what to look at first and what to do
    assert all(word in entry for word in ("**Means**", "**Check**", "**Do**")), entry[:300]
