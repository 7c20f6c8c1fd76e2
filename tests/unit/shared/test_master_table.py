"""The plants and vehicle groups table keeps the newest change per kind and name, by the policies' rule."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.master_table import MasterTable

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


def change(
    name: str, known: bool, minutes: int, kind: MasterKind = MasterKind.VEHICLE_GROUP
) -> MasterDataChange:
    return MasterDataChange(
        kind=kind, name=name, known=known, set_by="C. Lead", set_at=T0 + dt.timedelta(minutes=minutes)
    )


def test_an_older_withdrawal_read_again_after_a_newer_addition_does_not_withdraw_the_group() -> None:
    table = MasterTable([change("KUDU", True, 5)])
    assert table.add(change("KUDU", False, 1)) is False
    assert table.is_known(MasterKind.VEHICLE_GROUP, "KUDU")
    assert table.add(change("KUDU", False, 9)) is True
    assert not table.is_known(MasterKind.VEHICLE_GROUP, "KUDU")


def test_a_plant_and_a_group_of_the_same_name_are_kept_apart() -> None:
    table = MasterTable([change("SILVERTON", True, 0, MasterKind.PLANT), change("SILVERTON", False, 1)])
    assert table.known(MasterKind.PLANT) == frozenset({"SILVERTON"})
    assert table.known(MasterKind.VEHICLE_GROUP) == frozenset()
