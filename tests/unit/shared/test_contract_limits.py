"""The contracts bound what one message may carry: a field naming the limit, never a 150 MB certificate."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import ValidationError

from devkit.samples import generate
from shared.contracts import Approval, BuildRecord, approvals, events
from shared.contracts.events import ValidatedRecord
from shared.contracts.policies import PolicyChange, ReleasePolicy

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def test_an_approval_with_a_million_remarks_is_refused_naming_the_certificate() -> None:
    approval = generate(1, seed=1, defect_share=0.0).approvals[0]
    data = approval.model_dump(mode="json")
    data["certificate"]["Remarks"] = ["x" * 10] * 1_000_000
    with pytest.raises(ValidationError) as caught:
        Approval.model_validate(data)
    (error,) = caught.value.errors()
    assert error["loc"] == ("certificate",) and "bytes as JSON" in error["msg"]


def test_an_approval_nested_deeper_than_ivi_goes_is_refused() -> None:
    approval = generate(1, seed=1, defect_share=0.0).approvals[0]
    data = approval.model_dump(mode="json")
    deep: dict[str, object] = {}
    node = deep
    for _ in range(30):
        node["G"] = {}
        node = node["G"]  # type: ignore[assignment]
    data["certificate"]["Deep"] = deep
    with pytest.raises(ValidationError, match="levels deep"):
        Approval.model_validate(data)


def test_the_sample_approvals_are_well_inside_the_limits() -> None:
    for approval in generate(50, seed=1, defect_share=0.0).approvals:
        Approval.model_validate(approval.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colours": ["1"] * 11}, "colours"),
        ({"colours": ["1" * 9]}, "colours"),
        ({"tyres": [{"axle": 1, "option": 1}] * 100}, "tyres"),
    ],
)
def test_a_build_carrying_more_than_the_ivi_model_can_hold_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    build = generate(1, seed=1, defect_share=0.0).builds[0]
    with pytest.raises(ValidationError) as caught:
        BuildRecord.model_validate({**build.model_dump(mode="json"), **change})
    assert {error["loc"][0] for error in caught.value.errors()} == {field}


@pytest.mark.parametrize(("field", "value"), [("revision", 10**20), ("actual_mass_kg", 2**70)])
def test_numbers_a_database_cannot_store_are_refused_by_the_contract(field: str, value: int) -> None:
    build = generate(1, seed=1, defect_share=0.0).builds[0]
    with pytest.raises(ValidationError) as caught:
        BuildRecord.model_validate({**build.model_dump(mode="json"), field: value})
    assert {error["loc"][0] for error in caught.value.errors()} == {field}


def validated_json(approval_data: dict[str, Any], n: int = 0) -> bytes:
    build = generate(n + 1, seed=1, defect_share=0.0).builds[n]
    record = {"record_id": f"{build.vin}:{build.revision}", "build": build.model_dump(mode="json")}
    return json.dumps({**record, "approval": approval_data}).encode()


def test_records_carrying_the_same_approval_share_one_snapshot_validated_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch of validated records carried 500 copies of a few approvals: 44 KB and 0.3 ms each."""
    monkeypatch.setattr(events, "SNAPSHOTS", events.SharedSnapshots())
    walks = 0
    walk = approvals._depth

    def counted(value: Any) -> int:
        nonlocal walks
        walks += 1
        return walk(value)

    approval = generate(1, seed=1, defect_share=0.0).approvals[0]
    data = approval.model_dump(mode="json")
    bodies = validated_json(data, 0), validated_json(data, 1)
    monkeypatch.setattr(approvals, "_depth", counted)
    first, second = (ValidatedRecord.model_validate_json(body) for body in bodies)
    assert first.approval == approval and second.approval is first.approval
    assert first.build != second.build
    assert walks == 1, "the second copy was validated again"


def test_an_approval_that_differs_from_the_one_seen_is_validated_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "SNAPSHOTS", events.SharedSnapshots())
    approval = generate(1, seed=1, defect_share=0.0).approvals[0]
    data = approval.model_dump(mode="json")
    seen = ValidatedRecord.model_validate_json(validated_json(data)).approval
    changed = {**data, "actual_mass_min_kg": (approval.actual_mass_min_kg or 1000) - 1}
    other = ValidatedRecord.model_validate_json(validated_json(changed)).approval
    assert other is not seen and other.key == seen.key
    assert other.actual_mass_min_kg == (approval.actual_mass_min_kg or 1000) - 1
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(30):
        node["G"] = {}
        node = node["G"]
    broken = {**data, "certificate": {**data["certificate"], "Deep": deep}}
    with pytest.raises(ValidationError, match="levels deep"):
        ValidatedRecord.model_validate_json(validated_json(broken))


def test_the_snapshots_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshots = events.SharedSnapshots(limit=2)
    monkeypatch.setattr(events, "SNAPSHOTS", snapshots)
    data = generate(1, seed=1, defect_share=0.0).approvals[0].model_dump(mode="json")
    for version in ("A", "B", "C"):
        ValidatedRecord.model_validate_json(validated_json({**data, "version": version}))
    assert [key.rsplit("|", 1)[1] for key in snapshots._seen] == ["B", "C"]


def test_an_approvals_master_data_hash_is_computed_once_per_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approvals, "_HASHED", {})
    approval = generate(1, seed=1, defect_share=0.0).approvals[0]
    copy = Approval.model_validate_json(approval.model_dump_json())
    changed = approval.model_copy(update={"variant": approval.variant + "X"})
    dumps, counted = approvals.json.dumps, 0

    def counting(*args: Any, **kwargs: Any) -> str:
        nonlocal counted
        counted += 1
        return dumps(*args, **kwargs)

    monkeypatch.setattr(approvals.json, "dumps", counting)
    first = approvals.master_data_sha256(approval)
    assert [approvals.master_data_sha256(approval) for _ in range(3)] == [first] * 3
    assert counted == 1
    assert approvals.master_data_sha256(copy) == first and counted == 2  # an equal object: the same hash
    assert approvals.master_data_sha256(changed) != first


@pytest.mark.parametrize("group", ["ZA\x00M1", "ZA\x0cM1", "\x11line", "line\x7f"])
def test_a_release_group_with_a_control_character_is_refused_naming_the_field(group: str) -> None:
    data = generate(1, seed=1, defect_share=0.0).builds[0].model_dump(mode="json")
    with pytest.raises(ValidationError) as caught:
        BuildRecord.model_validate({**data, "vehicle_group": group})
    (error,) = caught.value.errors()
    assert error["loc"] == ("vehicle_group",)
    with pytest.raises(ValidationError, match="vehicle_group"):
        PolicyChange(vehicle_group=group, policy=ReleasePolicy.HOLD, set_by="Ann", set_at=NOW)


def test_a_release_group_in_any_script_with_spaces_and_signs_is_accepted() -> None:
    data = generate(1, seed=1, defect_share=0.0).builds[0].model_dump(mode="json")
    group = "Ära M1 - línea/2 (ZA)"
    assert BuildRecord.model_validate({**data, "vehicle_group": group}).vehicle_group == group
    assert (
        PolicyChange(vehicle_group=group, policy=ReleasePolicy.AUTO, set_by="Ann", set_at=NOW).vehicle_group
        == group
    )
