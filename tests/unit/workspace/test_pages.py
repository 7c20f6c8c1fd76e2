"""The workspace's page logic that needs no browser: redirects, ages, the board's numbers, policies."""

from __future__ import annotations

import datetime as dt
import re

import jinja2
import pytest

from services.workspace.identity import AuditEntry
from services.workspace.routes.answers import TEMPLATES
from services.workspace.routes.signin import safe_next
from services.workspace.routes.views import age_text, board_view, revisions_of, settled_findings, timeline_of
from shared.contracts.policies import PolicyChange, ReleasePolicy
from shared.policy_table import PolicyTable

pytestmark = pytest.mark.unit
T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/worklists/production?group=KUDU", "/worklists/production?group=KUDU"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("javascript:alert(1)", "/"),
        ("records/X", "/"),
    ],
)
def test_sign_in_returns_only_to_a_page_of_this_site(target: str, kept: str) -> None:
    assert safe_next(target) == kept


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "0 min"), (45 * 60, "45 min"), (3 * 3600 + 20 * 60, "3 h 20 min"), (52 * 3600, "2 d 4 h")],
)
def test_ages_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


def test_the_board_has_a_count_for_every_state_of_every_group_and_the_totals() -> None:
    board = board_view(
        {
            "total": 5,
            "by_state": {"archived": 4, "blocked": 1},
            "by_group": {"KUDU": {"archived": 3, "blocked": 1}, "CHR": {"archived": 1}},
            "archived_last_hour": 2,
            "delivery_by_state": {"delivered": 3, "delivery_rejected": 1},
        }
    )
    assert [g.name for g in board.groups] == ["CHR", "KUDU"]
    assert board.deliveries == {
        "delivery_queued": 0,
        "submitted": 0,
        "delivery_retrying": 0,
        "delivered": 3,
        "delivery_rejected": 1,
    }
    kudu = board.groups[1].counts
    assert kudu["archived"] == 3 and kudu["blocked"] == 1 and kudu["held"] == 0
    assert set(kudu) == set(board.states) and len(board.states) == 10
    assert board.totals["archived"] == 4 and board.archived_last_hour == 2
    assert board.archived_last_day is None  # not known: the page shows a dash, not a zero


def test_the_board_says_when_its_counts_are_catching_up_with_the_pipeline() -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)

    def page(readiness: dict[str, object]) -> str:
        board = board_view(readiness)
        return env.get_template("board.html").render(board=board, teams=[], deliveries=[], problem=None)

    assert "12,345 status events are not counted yet" in page({"events_behind": 12345})
    assert "catching up" not in page({"events_behind": 0})
    assert "catching up" not in page({"events_behind": None})  # status has not read its topic yet


def test_the_timeline_merges_events_and_peoples_actions_newest_first() -> None:
    record = {
        "timeline": [
            {"revision": 1, "stage": "validation", "state": "needs_review", "time": T0.isoformat()},
            {
                "revision": 1,
                "stage": "archive",
                "state": "archived",
                "time": (T0 + dt.timedelta(minutes=2)).isoformat(),
            },
        ]
    }
    action = AuditEntry(
        "Rita Reviewer", "review:accept", "record:V", {"revision": 1}, T0 + dt.timedelta(minutes=1)
    )
    rows = timeline_of(record, [action])
    assert [(row.stage, row.state) for row in rows] == [
        ("archive", "archived"),
        ("workspace", "review:accept"),
        ("validation", "needs_review"),
    ]
    assert rows[1].service == "Rita Reviewer" and rows[1].revision is None


def change(group: str, policy: ReleasePolicy, minutes: int) -> PolicyChange:
    return PolicyChange(
        vehicle_group=group, policy=policy, set_by="C. Lead", set_at=T0 + dt.timedelta(minutes=minutes)
    )


def test_the_policy_table_keeps_the_newest_change_of_each_group() -> None:
    table = PolicyTable()
    table.add_all([change("KUDU", ReleasePolicy.HOLD, 0), change("KUDU", ReleasePolicy.AUTO, 5)])
    assert not table.add(change("KUDU", ReleasePolicy.REVIEW, 1))  # older, arriving late
    found = table.get("KUDU")
    assert found is not None and found.policy is ReleasePolicy.AUTO
    assert table.get("CHR") is None and table.groups() == ["KUDU"]


def test_the_approval_book_keeps_each_change_with_the_fields_it_changed() -> None:
    from devkit.samples import generate
    from services.workspace.approvals import ApprovalBook, master_data_hash

    first = generate(vehicles=1, seed=3, defect_share=0.0).approvals[0]
    extended = first.model_copy(update={"actual_mass_max_kg": (first.actual_mass_max_kg or 0) + 40})
    book = ApprovalBook()
    assert book.add(first, T0, "type-approval") is not None
    assert book.add(first, T0 + dt.timedelta(minutes=1), "type-approval") is None  # a repeat
    change = book.add(extended, T0 + dt.timedelta(minutes=2), "type-approval")
    assert change is not None and change.changed == ("actual_mass_max_kg",)
    assert [c.at for c in book.history(first.key)] == [T0, T0 + dt.timedelta(minutes=2)]
    assert book.current() == [extended]
    assert master_data_hash(first) != master_data_hash(extended) == change.digest


def test_each_revision_is_listed_newest_first_with_the_last_state_it_reached() -> None:
    at = [(T0 + dt.timedelta(minutes=m)).isoformat() for m in range(6)]
    record = {
        "timeline": [
            {"revision": 1, "stage": "intake", "state": "received", "time": at[0]},
            {"revision": 1, "stage": "validation", "state": "blocked", "time": at[1]},
            {"revision": 2, "stage": "intake", "state": "received", "time": at[2]},
            {"revision": 2, "stage": "archive", "state": "archived", "time": at[3]},
            {"revision": 2, "stage": "delivery", "state": "delivery_queued", "time": at[4]},
            {"revision": 2, "stage": "delivery", "state": "delivered", "time": at[5]},
        ]
    }
    # A delivered revision reached archived (its certificate is offered); the delivery is beside it.
    assert [(r.revision, r.state, r.delivery) for r in revisions_of(record)] == [
        (2, "archived", "delivered"),
        (1, "blocked", None),
    ]
    assert revisions_of(None) == []


def test_findings_the_record_no_longer_has_are_listed_as_settled_with_when_they_were_last_seen() -> None:
    mass = {"code": "MASS", "path": "CocDataGroup/ActualMass", "message": "too heavy", "owner": "production"}
    tyre = {
        "code": "TYRE",
        "path": "CocDataGroup/AxleTable",
        "message": "not approved",
        "owner": "production",
    }
    at = [(T0 + dt.timedelta(minutes=m)).isoformat() for m in range(3)]
    record = {
        "findings": [tyre],
        "timeline": [
            {"revision": 1, "state": "blocked", "time": at[0], "findings": [mass, tyre]},
            {"revision": 2, "state": "blocked", "time": at[1], "findings": [mass, tyre]},
            {"revision": 3, "state": "blocked", "time": at[2], "findings": [tyre]},
        ],
    }
    settled = settled_findings(record)
    assert [(f.code, f.revision, f.last_seen) for f in settled] == [("MASS", 2, at[1])]
    assert settled_findings({"findings": [], "timeline": [{"revision": 1, "time": at[0]}]}) == []


def test_every_pages_title_is_plain_text() -> None:
    """A page's title block is the browser tab's text: no markup may end up in it."""
    pages = sorted(TEMPLATES.glob("*.html"))
    assert len(pages) >= 8
    for template in pages:
        titles = re.findall(r"{% block title %}(.*?){% endblock %}", template.read_text(), flags=re.S)
        for title in titles:
            assert "<" not in title and "\n" not in title, f"{template.name}: title block {title[:60]!r}"
