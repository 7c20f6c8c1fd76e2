"""One page of a team's worklist: its waiting records, filtered, oldest first, paged."""

from __future__ import annotations

import datetime as dt

import pytest

from services.status.worklist import WorklistQuery, age_s, entries_by_owner, select
from shared.contracts.findings import Owner

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def ago(minutes: int) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


ROWS = [
    ("V05", ago(5), "CHR", ["production|MASS_ABOVE_MAX", "type-approval|APPROVAL_UNKNOWN"]),
    ("V50", ago(50), "VAN", ["production|TYRE_UNLISTED"]),
    ("V30", ago(30), "CHR", ["production|MASS_ABOVE_MAX", "production|TYRE_UNLISTED"]),
    ("V31", ago(30), None, ["compliance|COLOUR_UNLISTED"]),
    ("V29", ago(30), "VAN", ["production|MASS_ABOVE_MAX"]),
    ("V00", ago(0), "CHR", []),  # held without findings: no team's worklist
]


def vins(owner: Owner, **filters: object) -> tuple[list[str], int]:
    query = WorklistQuery(owner, **filters)  # type: ignore[arg-type]
    chosen, total = select(entries_by_owner(ROWS).get(owner.value, []), query, NOW)
    return [entry.vin for entry in chosen], total


def test_worklist_of_a_team_lists_only_records_with_its_findings_oldest_first_then_by_vin() -> None:
    assert vins(Owner.PRODUCTION) == (["V50", "V29", "V30", "V05"], 4)
    assert vins(Owner.TYPE_APPROVAL) == (["V05"], 1)
    assert vins(Owner.COMPLIANCE) == (["V31"], 1)
    assert vins(Owner.INTEGRATION) == ([], 0)


def test_entry_keeps_only_the_codes_its_team_owns() -> None:
    (entry,) = [e for e in entries_by_owner(ROWS)["production"] if e.vin == "V05"]
    assert entry.codes == frozenset({"MASS_ABOVE_MAX"})


def test_filters_by_group_code_and_age_combine() -> None:
    assert vins(Owner.PRODUCTION, group="CHR") == (["V30", "V05"], 2)
    assert vins(Owner.PRODUCTION, code="TYRE_UNLISTED") == (["V50", "V30"], 2)
    assert vins(Owner.PRODUCTION, min_age_s=30 * 60) == (["V50", "V29", "V30"], 3)
    assert vins(Owner.PRODUCTION, min_age_s=30 * 60 + 1) == (["V50"], 1)
    assert vins(Owner.PRODUCTION, group="CHR", code="MASS_ABOVE_MAX", min_age_s=600) == (["V30"], 1)
    assert vins(Owner.PRODUCTION, group="NONE") == ([], 0)


def test_pages_split_the_matching_records_and_total_counts_them_all() -> None:
    assert vins(Owner.PRODUCTION, size=3) == (["V50", "V29", "V30"], 4)
    assert vins(Owner.PRODUCTION, size=3, page=2) == (["V05"], 4)
    assert vins(Owner.PRODUCTION, size=3, page=3) == ([], 4)


def test_age_is_whole_seconds_and_never_negative() -> None:
    assert age_s(ago(2), NOW) == 120
    assert age_s(NOW + dt.timedelta(seconds=5), NOW) == 0
