"""People's actions read as sentences on the rollout page and the timeline, and "default" says where it is set."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from services.workspace.identity import AuditEntry, PersonRole
from services.workspace.words import said
from tests.unit.workspace.fakes import PEOPLE, Site

pytestmark = pytest.mark.unit
AT = dt.datetime(2026, 12, 7, 9, 18, tzinfo=dt.UTC)
LEAD = PEOPLE[PersonRole.COMPLIANCE_LEAD]


def entry(action: str, target: str, change: dict[str, object]) -> AuditEntry:
    return AuditEntry("Jane Smith", action, target, change, AT)


@pytest.mark.parametrize(
    ("action", "target", "change", "sentence"),
    [
        (
            "policy",
            "group:POLO-EU",
            {"policy": ["default", "review"], "comment": "first batch"},
            "Jane Smith set group POLO-EU to review: ‘first batch’",
        ),
        (
            "policy",
            "group:POLO-EU",
            {"policy": ["hold", "auto"], "comment": None},
            "Jane Smith set group POLO-EU to auto (was hold)",
        ),
        (
            "master data",
            "group:RANGER-CC",
            {"known": [False, True]},
            "Jane Smith added vehicle group RANGER-CC to the master data",
        ),
        (
            "master data",
            "plant:SILVERTON",
            {"known": [False, True]},
            "Jane Smith added plant SILVERTON to the master data",
        ),
        (
            "review:reject",
            "record:WVWZZZAWZTY000001",
            {"revision": 2, "decision": "reject", "comment": "wrong mass"},
            "Jane Smith rejected revision 2: ‘wrong mass’",
        ),
        (
            "review:accept",
            "record:WVWZZZAWZTY000001",
            {"revision": 1, "decision": "accept", "comment": ""},
            "Jane Smith accepted revision 1",
        ),
        (
            "re-issue",
            "approval:e1*2018/858*00001*00|POLO|A|B",
            {"job": "j1", "approval_sha256": "ab", "certificates": 20},
            "Jane Smith started a re-issue of 20 certificates after a change of approval e1*2018/858*00001*00|POLO|A|B",
        ),
    ],
)
def test_an_action_reads_as_a_sentence(
    action: str, target: str, change: dict[str, object], sentence: str
) -> None:
    assert said(entry(action, target, change)) == sentence


def test_an_action_without_its_own_sentence_still_reads_as_words_not_json() -> None:
    text = said(entry("archive", "record:V1", {"from_revision": 1, "policy": ["a", None]}))
    assert text == "Jane Smith: archive on record:V1 (from revision 1; policy a → none)"
    assert "{" not in text and '"' not in text


def test_details_of_an_older_shape_fall_back_to_plain_words() -> None:
    assert (
        said(entry("policy", "group:G", {"policy": "auto"})) == "Jane Smith: policy on group:G (policy auto)"
    )


def test_the_rollout_page_tells_its_history_in_sentences_and_names_the_default_policys_setting() -> None:
    site = Site()
    site.api.defaults = {
        "default": "auto",
        "default_setting": "COC_DEFAULT_RELEASE_POLICY",
        "by_group": {"CHR": "review"},
        "by_group_setting": "COC_RELEASE_POLICY",
    }
    site.api.readiness_answer = {"by_group": {"CHR": {"received": 1}, "KUDU": {"received": 1}}}
    csrf = site.sign_in_as(LEAD)
    form = {"csrf": csrf, "group": "NEWG", "policy": "hold", "new": "true", "comment": "not yet homologated"}
    site.client.post("/rollout", data=form)
    page = site.client.get("/rollout").text
    assert "<strong data-default-policy>auto</strong>" in page and "COC_DEFAULT_RELEASE_POLICY" in page
    rows = {
        m.group(1): m.group(0) for m in re.finditer(r'<tr data-group="([^"]+)">.*?</tr>', page, flags=re.S)
    }
    assert "<td data-policy>review</td>" in rows["CHR"] and "<code>COC_RELEASE_POLICY</code>" in rows["CHR"]
    assert (
        "<td data-policy>auto</td>" in rows["KUDU"]
        and "<code>COC_DEFAULT_RELEASE_POLICY</code>" in rows["KUDU"]
    )
    assert f"{LEAD.name} set group NEWG to hold: ‘not yet homologated’" in rows["NEWG"]
    assert "SAST</time>" in rows["NEWG"] and "&#34;policy&#34;" not in page and "{" not in rows["NEWG"]


def test_the_rollout_page_says_when_validation_did_not_tell_its_default() -> None:
    site = Site()
    site.sign_in_as(LEAD)
    page = site.client.get("/rollout").text
    assert "validation did not say which it is now" in page


def test_an_audit_log_row_reads_as_a_sentence_beside_its_stored_details() -> None:
    from services.workspace.words import said_row

    row = {
        "who": "Jane Smith",
        "action": "policy",
        "target": "group:POLO-EU",
        "time": "2026-12-07T09:18:00.000+00:00",
        "details": '{"comment": "first batch", "policy": ["default", "review"]}',
    }
    assert said_row(row) == "Jane Smith set group POLO-EU to review: ‘first batch’"
    assert said_row({**row, "details": "not json"}) == ""
    assert said_row({"who": "", "details": ""}) == ""


def test_the_audit_page_shows_times_in_sast_and_each_action_as_a_sentence_over_its_stored_details() -> None:
    from services.workspace.routes import deps
    from tests.unit.workspace.fakes import constant
    from tests.unit.workspace.test_routes_audit import ChainedAudit, chained

    site = Site()
    site.app.dependency_overrides[deps.audit] = constant(ChainedAudit(chained("record:V1")))
    site.sign_in_as(LEAD)
    page = site.client.get("/audit").text
    assert "Rita Reviewer reviewed V1: ‘checked 1’<br><code>" in page
    assert '<time datetime="2026-12-01T09:01:00.000Z">1 Dec 2026, 11:01 SAST</time>' in page
