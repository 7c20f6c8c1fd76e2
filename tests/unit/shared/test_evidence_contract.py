"""The release evidence a certificate carries from render to the archive: packed, and never too large."""

from __future__ import annotations

import os

import pytest

from devkit.samples import generate
from shared.contracts.approvals import Approval, master_data_sha256
from shared.contracts.events import EVIDENCE_TRAVEL_MAX, ApprovalPacks, Document, Evidence, PackedApproval

pytestmark = pytest.mark.unit
BROKER_LIMIT = 1_048_576  # Kafka's default message.max.bytes


def test_the_approval_travels_packed_and_comes_back_with_the_same_hash() -> None:
    samples = generate(3, seed=5, defect_share=0.0)
    build, approval = samples.builds[0], samples.approvals[0]
    evidence = Evidence.of(build, approval, None, document_bytes=15_000)
    assert evidence.approval_packed is not None
    assert len(evidence.approval_packed) < len(approval.model_dump_json()) / 2
    assert evidence.approval() == approval
    assert evidence.approval_sha256 == master_data_sha256(approval) and evidence.approval_key == approval.key


def test_a_certificate_near_the_broker_limit_leaves_an_incompressible_snapshot_behind_and_stays_under_it() -> (
    None
):
    samples = generate(1, seed=5, defect_share=0.0)
    build, approval = samples.builds[0], samples.approvals[0]
    noise = [
        {
            "RemarkSubjectDescription": os.urandom(40).hex(),
            "RemarkSubjectLanguage": "en",
            "Remark": os.urandom(40).hex(),
        }
        for _ in range(2_000)
    ]
    heavy = approval.model_copy(
        update={"certificate": {**approval.certificate, "RemarkTable": {"RemarkGroup": noise}}}
    )
    xml = "<x>" + "R" * 760_000 + "</x>"  # a signed certificate of 761 KB, as such an approval renders
    evidence = Evidence.of(build, heavy, None, document_bytes=len(xml))
    assert evidence.approval_packed is None and evidence.approval() is None
    assert evidence.approval_sha256 == master_data_sha256(heavy)
    document = Document(
        record_id=build.record_id,
        vin=build.vin,
        revision=build.revision,
        version_number=1,
        xml=xml,
        sha256="0" * 64,
        evidence=evidence,
    )
    assert len(document.model_dump_json()) < BROKER_LIMIT
    small = Evidence.of(build, heavy, None, document_bytes=20_000)
    assert small.approval_packed is not None and len(small.approval_packed) + 20_000 <= EVIDENCE_TRAVEL_MAX


def test_an_approval_is_packed_once_until_its_master_data_changes() -> None:
    samples = generate(3, seed=5, defect_share=0.0)
    approval = samples.approvals[0]
    packs = ApprovalPacks()
    first = packs.of(approval)
    again = packs.of(Approval.model_validate_json(approval.model_dump_json()))  # as each message parses it
    assert again is first and first == PackedApproval.of(approval)
    changed = approval.model_copy(update={"actual_mass_max_kg": (approval.actual_mass_max_kg or 0) + 1})
    repacked = packs.of(changed)
    assert repacked is not first and repacked.sha256 == master_data_sha256(changed)
