"""The contracts bound what one message may carry: a field naming the limit, never a 150 MB certificate."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from devkit.samples import generate
from shared.contracts import Approval, BuildRecord

pytestmark = pytest.mark.unit


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
