"""The audit log for auditors: who may see and download it, its CSV and JSON, formula-safe cells, the verdict carried."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json

import pytest

from services.workspace.audit_chain import GENESIS, ChainEntry, Verdict, link, verify
from services.workspace.identity import Person, PersonRole
from services.workspace.routes import deps
from tests.unit.workspace.fakes import PEOPLE, T0, Site, constant

pytestmark = pytest.mark.unit
MAY = [PersonRole.COMPLIANCE_LEAD, PersonRole.VIEWER]
MAY_NOT = [role for role in PersonRole if role not in MAY]
HOSTILE = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


@dataclasses.dataclass
class ChainedAudit:
    """An audit log holding ``entries`` as the chain holds them."""

    entries: list[ChainEntry]

    async def verification(self) -> tuple[list[ChainEntry], Verdict]:
        return self.entries, verify(self.entries, head_hint=max((e.seq for e in self.entries), default=0))

    async def for_target(self, target: str, limit: int = 5) -> list[ChainEntry]:
        """A group's recent changes, as the rollout page lists them: none here."""
        return []


def chained(*targets: str, person: str = "Rita Reviewer") -> list[ChainEntry]:
    entries, previous = [], GENESIS
    for seq, target in enumerate(targets, start=1):
        entry = link(
            seq,
            previous,
            person=person,
            role="reviewer",
            action="review:accept",
            target=target,
            details=json.dumps({"comment": f"checked {seq}"}),
            at=T0 + dt.timedelta(minutes=seq),
        )
        entries.append(entry)
        previous = entry.sha256
    return entries


def site_with(entries: list[ChainEntry], role: PersonRole = PersonRole.COMPLIANCE_LEAD) -> Site:
    site = Site()
    site.app.dependency_overrides[deps.audit] = constant(ChainedAudit(entries))
    site.sign_in_as(PEOPLE[role])
    return site


@pytest.mark.parametrize("role", MAY, ids=str)
@pytest.mark.parametrize("path", ["/audit", "/audit/log.csv", "/audit/log.json"])
def test_the_compliance_lead_and_a_viewer_account_see_and_download_the_audit_log(
    role: PersonRole, path: str
) -> None:
    response = site_with(chained("record:A", "group:B"), role).client.get(path)

    assert response.status_code == 200
    assert "group:B" in response.text


@pytest.mark.parametrize("role", MAY_NOT, ids=str)
@pytest.mark.parametrize("path", ["/audit", "/audit/log.csv", "/audit/log.json"])
def test_other_roles_may_not_see_or_download_the_audit_log(role: PersonRole, path: str) -> None:
    response = site_with(chained("record:A"), role).client.get(path)

    assert response.status_code == 403
    assert "record:A" not in response.text


def test_a_visitor_without_a_session_is_sent_to_sign_in() -> None:
    site = Site()
    site.app.dependency_overrides[deps.audit] = constant(ChainedAudit(chained("record:A")))

    response = site.client.get("/audit/log.csv")

    assert response.status_code == 303 and response.headers["location"] == "/signin?next=/audit/log.csv"


def test_the_csv_holds_every_entry_with_its_chain_fields_and_ends_with_the_verdict() -> None:
    entries = chained("record:A", "group:B", "user:C")

    response = site_with(entries).client.get("/audit/log.csv")

    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="audit-log-20261201T090000Z.csv"'
    assert response.headers["audit-chain"] == f"intact; entries 3; head 3 sha256 {entries[-1].sha256}"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["seq"] for row in rows[:3]] == ["1", "2", "3"]
    assert rows[0] == {
        "seq": "1",
        "time": "2026-12-01T09:01:00.000+00:00",
        "who": "Rita Reviewer",
        "role": "reviewer",
        "action": "review:accept",
        "target": "record:A",
        "details": '{"comment": "checked 1"}',
        "previous_sha256": GENESIS,
        "sha256": entries[0].sha256,
        "check": "ok",
    }
    assert rows[2]["previous_sha256"] == entries[1].sha256
    assert rows[-1]["action"] == "chain verification" and rows[-1]["check"].startswith("intact: 3 entries")


def test_the_json_holds_the_verification_and_every_entry() -> None:
    entries = chained("record:A", "group:B")

    response = site_with(entries, PersonRole.VIEWER).client.get("/audit/log.json")

    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["verification"]["intact"] is True
    assert document["verification"]["head_sha256"] == entries[-1].sha256
    assert [e["sha256"] for e in document["entries"]] == [e.sha256 for e in entries]
    assert document["entries"][1]["previous_sha256"] == entries[0].sha256


def test_a_broken_chain_is_said_in_the_header_the_rows_and_the_page() -> None:
    entries = chained("record:A", "group:B", "user:C", "record:D")
    entries[1] = dataclasses.replace(entries[1], details='{"comment": "rejected"}')
    del entries[2]
    site = site_with(entries)

    csv_answer = site.client.get("/audit/log.csv")
    json_answer = site.client.get("/audit/log.json").json()
    page = site.client.get("/audit")

    assert csv_answer.headers["audit-chain"].startswith("broken at entry 2 (altered); entries 3;")
    checks = {row["seq"]: row["check"] for row in csv.DictReader(io.StringIO(csv_answer.text))}
    assert checks["1"] == "ok" and checks["2"].startswith("entry 2 was altered")
    assert checks["3"] == "entry 3 is missing (entry 4 follows entry 2)" and checks["4"] == "ok"
    assert [(b["seq"], b["kind"]) for b in json_answer["verification"]["breaks"]] == [
        (2, "altered"),
        (3, "missing"),
    ]
    assert 'data-verdict="broken"' in page.text and "BROKEN at entry 2" in page.text


def test_csv_cells_that_would_start_a_spreadsheet_formula_are_quoted_and_the_json_keeps_them_as_they_are() -> (
    None
):
    site = site_with(chained(*HOSTILE, person="=cmd|' /C calc'!A0"))

    response = site.client.get("/audit/log.csv")

    rows = list(csv.DictReader(io.StringIO(response.text)))[: len(HOSTILE)]
    assert [row["target"] for row in rows] == [f"'{value}" for value in HOSTILE]
    assert {row["who"] for row in rows} == {"'=cmd|' /C calc'!A0"}
    assert all(row["check"] == "ok" for row in rows)
    assert [e["target"] for e in site.client.get("/audit/log.json").json()["entries"]] == HOSTILE


def test_an_unknown_format_is_refused() -> None:
    assert site_with(chained("record:A")).client.get("/audit/log.xlsx").status_code == 422


def test_the_navigation_links_the_audit_log_only_for_who_may_open_it() -> None:
    site = site_with([], PersonRole.COMPLIANCE_LEAD)
    assert 'href="/audit"' in site.client.get("/rollout").text

    site.sign_in_as(Person("Test reviewer", frozenset({PersonRole.REVIEWER})))
    assert 'href="/audit"' not in site.client.get("/rollout").text
