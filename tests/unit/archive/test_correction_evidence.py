"""A re-issue's evidence names the approval change (old → new), who changed it, who re-issued, what it corrects."""

from __future__ import annotations

import pytest

from services.archive.evidence import corrected_by, correction_of

pytestmark = pytest.mark.unit

OLD, NEW = "a" * 64, "b" * 64
CORRECTION = {
    "of_revision": 1,
    "of_version_number": 1,
    "approval_key": "K",
    "approval_sha256": NEW,
    "changed_by": "Thandi Nkosi",
    "started_by": "Pieter Botha",
    "job": "reissue-20261207093015-abc123",
}
ORIGINAL = {
    "_id": "VIN:1",
    "vin": "VIN",
    "revision": 1,
    "sha256": "c" * 64,
    "evidence": {"approval_sha256": OLD, "build": {}},
}
REISSUE = {
    "_id": "VIN:2",
    "vin": "VIN",
    "revision": 2,
    "sha256": "d" * 64,
    "evidence": {"approval_sha256": NEW, "build": {"correction": CORRECTION}},
}


def test_the_re_issue_names_the_approval_change_the_people_and_the_certificate_it_corrects() -> None:
    found = correction_of(REISSUE, [ORIGINAL, REISSUE])
    assert found == {
        "approval_change": {
            "approval_key": "K",
            "old_sha256": OLD,
            "new_sha256": NEW,
            "changed_by": "Thandi Nkosi",
        },
        "started_by": "Pieter Botha",
        "job": "reissue-20261207093015-abc123",
        "corrects": {"record_id": "VIN:1", "revision": 1, "version_number": 1, "sha256": "c" * 64},
    }


def test_the_original_names_the_re_issue_that_corrects_it_and_has_no_correction_of_its_own() -> None:
    assert correction_of(ORIGINAL, [ORIGINAL, REISSUE]) is None
    assert corrected_by(ORIGINAL, [ORIGINAL, REISSUE]) == "VIN:2"
    assert corrected_by(REISSUE, [ORIGINAL, REISSUE]) is None
