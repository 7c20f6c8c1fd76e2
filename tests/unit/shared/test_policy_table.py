"""The one table of release-policy changes that validation and the workspace both keep."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.contracts.policies import PolicyChange, ReleasePolicy
from shared.policy_table import PolicyTable

pytestmark = pytest.mark.unit
NOON = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)


def change(policy: ReleasePolicy, minute: int, group: str = "KUDU", by: str = "C. Lead") -> PolicyChange:
    return PolicyChange(
        vehicle_group=group, policy=policy, set_by=by, set_at=NOON + dt.timedelta(minutes=minute)
    )


def test_the_newest_change_of_a_group_wins_whatever_order_the_changes_come_in() -> None:
    newest = change(ReleasePolicy.AUTO, 5)
    for order in ([change(ReleasePolicy.HOLD, 0), newest], [newest, change(ReleasePolicy.HOLD, 0)]):
        assert PolicyTable(order).get("KUDU") == newest


def test_an_older_change_or_a_repeat_is_refused_and_a_newer_one_taken() -> None:
    table = PolicyTable([change(ReleasePolicy.HOLD, 5)])
    assert table.add(change(ReleasePolicy.AUTO, 1)) is False  # set earlier, arriving late
    assert table.add(change(ReleasePolicy.HOLD, 5)) is False  # the same change read again
    assert table.add(change(ReleasePolicy.REVIEW, 9)) is True
    found = table.get("KUDU")
    assert found is not None and found.policy is ReleasePolicy.REVIEW


def test_of_two_changes_set_at_the_same_instant_the_one_taken_last_wins() -> None:
    table = PolicyTable([change(ReleasePolicy.HOLD, 0, by="A. Lead")])
    assert table.add(change(ReleasePolicy.AUTO, 0, by="B. Lead")) is True
    found = table.get("KUDU")
    assert found is not None and found.set_by == "B. Lead"


def test_the_table_lists_its_groups_and_their_policies_and_cannot_be_changed_from_outside() -> None:
    table = PolicyTable([change(ReleasePolicy.HOLD, 0, "KUDU"), change(ReleasePolicy.REVIEW, 0, "CHR")])
    assert table.groups() == ["CHR", "KUDU"] and table.get("ELAND") is None
    assert table.policies() == {"KUDU": ReleasePolicy.HOLD, "CHR": ReleasePolicy.REVIEW}
    with pytest.raises(TypeError):
        table.changes["KUDU"] = change(ReleasePolicy.AUTO, 9)  # type: ignore[index]
    assert set(table.changes) == {"KUDU", "CHR"}
