"""A re-issue renders as a correction: new reference id, version number + 1, the re-issue's time, same XSD version.

The job sets the record's ``released_at`` to its own time and drops a
``signature_date`` the original carried; render writes IviVersionDateTime and
SignatureDate from it (EReg IVI guidelines 1.7, 1.12). TypeApprovalIssueDate
stays the approval's.
"""

from __future__ import annotations

import datetime as dt

import pytest

from services.render.document import reference_id, render
from services.workspace.reissue.plan import Job, reissue_record
from shared.contracts import Approval, BuildRecord
from shared.ivi import IviSchema
from shared.xml import parse_bytes
from tests.unit.render.test_render import _text, approval, build  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.unit

AT = dt.datetime(2026, 12, 7, 9, 30, 15, 123000, tzinfo=dt.UTC)


def test_a_re_issue_renders_with_a_new_reference_id_the_next_version_number_and_the_jobs_time(
    approval: Approval,  # noqa: F811
    build: BuildRecord,  # noqa: F811
    schema: IviSchema,
) -> None:
    original = build.model_copy(update={"signature_date": dt.date(2024, 3, 6)})
    job = Job("reissue-20261207093015-abc123", approval.key, "b" * 64, "Thandi Nkosi", "Pieter Botha", AT)
    archived = {"vin": original.vin, "revision": original.revision, "version_number": 1}
    corrected = reissue_record(
        job, archived, original.model_dump(mode="json"), revision=original.revision + 1
    )

    first = parse_bytes(render(original, approval, version_number=1, schema=schema))
    second = parse_bytes(render(corrected, approval, version_number=2, schema=schema))

    assert _text(second, "//ivi:IviReferenceId") == reference_id(corrected.record_id)
    assert _text(second, "//ivi:IviReferenceId") != _text(first, "//ivi:IviReferenceId")
    assert (_text(first, "//ivi:IviVersionNumber"), _text(second, "//ivi:IviVersionNumber")) == ("1", "2")
    assert _text(second, "//ivi:IviVersionNumberXsd") == _text(first, "//ivi:IviVersionNumberXsd") == "2.0"
    assert _text(second, "//ivi:IviVersionDateTime") == "2026-12-07T09:30:15.123+00:00"
    assert _text(second, "//ivi:SignatureDate") == "2026-12-07"  # not the original's
    assert _text(second, "//ivi:TypeApprovalIssueDate") == _text(first, "//ivi:TypeApprovalIssueDate")
    assert _text(second, "//ivi:VehicleIdentificationNumber") == original.vin
