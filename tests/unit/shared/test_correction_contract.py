"""The re-issue's contract: a build record that says which certificate it corrects and why."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from shared.contracts import ApprovalRef, BuildRecord
from shared.contracts.builds import Correction

pytestmark = pytest.mark.unit

SHA = "ab" * 32


def correction(**changes: object) -> Correction:
    fields: dict[str, object] = {
        "of_revision": 1,
        "of_version_number": 1,
        "approval_key": "e6*2018/858*00294*01|AX2T(M)|ZYX20(H)|AX2T0L",
        "approval_sha256": SHA,
        "changed_by": "Thandi Nkosi",
        "started_by": "Pieter Botha",
        "job": "r-20261207-abc",
    }
    return Correction.model_validate({**fields, **changes})


def build(**changes: object) -> BuildRecord:
    return BuildRecord.model_validate(
        {
            "vin": "JTAM1C0MPTEST0042",
            "build_id": "MES-0042",
            "revision": 2,
            "plant": "Durban",
            "vehicle_group": "C-HR",
            "approval": ApprovalRef(number="e6*2018/858*00294*01", type="T", variant="V", version="W"),
            "released_at": dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC),
            **changes,
        }
    )


def test_a_build_without_correction_is_a_plain_build_and_its_json_round_trips() -> None:
    plain = build()
    assert plain.correction is None
    assert BuildRecord.model_validate_json(plain.model_dump_json()) == plain


def test_a_re_issue_carries_its_correction_through_json() -> None:
    reissue = build(correction=correction())
    again = BuildRecord.model_validate_json(reissue.model_dump_json())
    assert again.correction == correction()
    assert again.correction is not None and again.correction.of_revision == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("approval_sha256", "not-a-hash"),
        ("changed_by", "<script>"),
        ("started_by", ""),
        ("job", "a job with spaces"),
        ("of_revision", 0),
    ],
)
def test_a_correction_with_a_bad_field_is_refused_naming_it(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        correction(**{field: value})
    assert field in str(caught.value)
