"""Multistage vehicles: each rule's finding, the base certificate's import, and a stage-2 certificate.

The sample is a Ford Ranger chassis cab (stage 1, incomplete) completed by a body
builder as a dropside lorry (stage 2, completed): ``devkit.multistage``.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from devkit.keys import DevSeal, generate_dev_seal
from devkit.multistage import approvals, base_certificate, chassis_build, completed_build
from services.render.document import render
from services.signing.seal import Seal
from services.validation.policy import RulePolicy
from services.validation.rules import ApprovalTable, check
from shared.base_certificate import BaseCertificateError, read_base
from shared.contracts import Approval, BuildRecord, Finding, Owner
from shared.contracts.builds import PreviousStage
from shared.ivi import IviSchema
from shared.xml import load_ivi_schema, parse_bytes, validate
from shared.xmldsig import verify

pytestmark = pytest.mark.unit
TODAY = dt.date(2026, 12, 7)
XMLSEC1 = shutil.which("xmlsec1")
STAGE_CODES = {
    "MANUFACTURER_STAGES_GAP",
    "STAGE_OF_COMPLETION_INCONSISTENT",
    "PREVIOUS_STAGE_AT_FIRST_STAGE",
    "PREVIOUS_STAGE_MISSING",
    "PREVIOUS_STAGE_UNEXPECTED",
    "PREVIOUS_STAGE_VIN",
    "PREVIOUS_STAGE_NUMBER",
    "PREVIOUS_STAGE_DIFFERS",
    "STAGE_NOT_CHANGED",
    "PREVIOUS_STAGE_NOT_RESTATED",
}


@pytest.fixture(scope="module")
def dev() -> DevSeal:
    return generate_dev_seal()


@pytest.fixture(scope="module")
def ford_seal(dev: DevSeal) -> Seal:
    return Seal.from_pem(dev.key_pem, dev.cert_pem)


@pytest.fixture(scope="module")
def base_xml(ford_seal: Seal, schema: IviSchema) -> bytes:
    return base_certificate(ford_seal, schema)


@pytest.fixture(scope="module")
def previous(base_xml: bytes, schema: IviSchema) -> PreviousStage:
    return read_base(base_xml, schema).previous_stage


def stage_findings(build: BuildRecord, approval_list: list[Approval], schema: IviSchema) -> list[Finding]:
    found = check(build, ApprovalTable.of(schema, approval_list), RulePolicy(), TODAY)
    return [f for f in found if f.code in STAGE_CODES]


def changed(approval: Approval, change: Callable[[dict[str, Any]], object]) -> Approval:
    tree = copy.deepcopy(approval.certificate)
    change(tree)
    return approval.model_copy(update={"certificate": tree})


def groups(tree: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = tree["ManufacturerTable"]["ManufacturerGroup"]
    return result


# --- record types ---------------------------------------------------------------------------------


def test_the_record_type_is_the_stage_of_completion_and_complete_when_absent() -> None:
    chassis, completed = approvals()
    assert (chassis.record_type, completed.record_type) == ("I", "V")
    without = changed(chassis, lambda tree: tree.pop("StageOfCompletion"))
    assert without.record_type == "C"


def test_the_sample_stages_have_no_stage_finding(schema: IviSchema, previous: PreviousStage) -> None:
    chassis, completed = approvals()
    assert check(chassis_build(), ApprovalTable.of(schema, [chassis]), RulePolicy(), TODAY) == []
    assert check(completed_build(previous), ApprovalTable.of(schema, [completed]), RulePolicy(), TODAY) == []


# --- the approval's ManufacturerTable -------------------------------------------------------------


def test_a_gap_in_the_stage_numbers_is_type_approvals_error(
    schema: IviSchema, previous: PreviousStage
) -> None:
    completed = changed(approvals()[1], lambda tree: groups(tree)[1].update(ManufacturerStageNumber="3"))
    found = stage_findings(completed_build(previous), [completed], schema)
    gap = [f for f in found if f.code == "MANUFACTURER_STAGES_GAP"]
    assert len(gap) == 1 and gap[0].owner is Owner.TYPE_APPROVAL
    assert gap[0].path == "CocDataGroup/ManufacturerTable/ManufacturerGroup[2]/ManufacturerStageNumber"


def test_a_later_stage_that_does_not_restate_stage_one_has_a_gap(
    schema: IviSchema, previous: PreviousStage
) -> None:
    completed = changed(approvals()[1], lambda tree: groups(tree).pop(0))
    assert "MANUFACTURER_STAGES_GAP" in {
        f.code for f in stage_findings(completed_build(previous), [completed], schema)
    }


@pytest.mark.parametrize(
    ("which", "completion", "refused"),
    [(0, "V", True), (0, "C", False), (0, "I", False), (1, "C", True), (1, "V", False), (1, "I", False)],
)
def test_the_stage_of_completion_fits_the_stage(
    which: int, completion: str, refused: bool, schema: IviSchema
) -> None:
    approval = changed(approvals()[which], lambda tree: tree.update(StageOfCompletion=completion))
    found = {f.code for f in ApprovalTable.of(schema, [approval]).master_findings[approval.key]}
    assert ("STAGE_OF_COMPLETION_INCONSISTENT" in found) is refused


def test_a_first_stage_names_no_previous_stage(schema: IviSchema) -> None:
    chassis = changed(approvals()[0], lambda tree: groups(tree)[0].update(PreviousStageType="TFXR"))
    found = stage_findings(chassis_build(), [chassis], schema)
    assert [f.code for f in found] == ["PREVIOUS_STAGE_AT_FIRST_STAGE"]


# --- the build's previous stage ---------------------------------------------------------------------


def test_a_later_stage_without_its_base_certificate_is_productions_error(
    schema: IviSchema, previous: PreviousStage
) -> None:
    build = completed_build(previous).model_copy(update={"previous_stage": None})
    found = stage_findings(build, [approvals()[1]], schema)
    assert [(f.code, f.owner) for f in found] == [("PREVIOUS_STAGE_MISSING", Owner.PRODUCTION)]


def test_a_first_stage_naming_a_previous_stage_is_refused(schema: IviSchema, previous: PreviousStage) -> None:
    build = chassis_build().model_copy(update={"previous_stage": previous})
    assert [f.code for f in stage_findings(build, [approvals()[0]], schema)] == ["PREVIOUS_STAGE_UNEXPECTED"]


def test_the_base_certificate_is_of_the_same_vin(schema: IviSchema, previous: PreviousStage) -> None:
    other = previous.model_copy(update={"vin": "AFACC4M60VS040999"})
    found = stage_findings(
        completed_build(previous).model_copy(update={"previous_stage": other}), [approvals()[1]], schema
    )
    assert [f.code for f in found] == ["PREVIOUS_STAGE_VIN"]
    assert found[0].path == "CocDataGroup/VehicleIdentificationNumber"


def test_stage_two_builds_on_stage_one(schema: IviSchema, previous: PreviousStage) -> None:
    build = completed_build(previous.model_copy(update={"stage": 2}))
    assert [f.code for f in stage_findings(build, [approvals()[1]], schema)] == ["PREVIOUS_STAGE_NUMBER"]


def test_previous_stage_values_fixed_by_the_approval_agree_with_the_base_certificate(
    schema: IviSchema, previous: PreviousStage
) -> None:
    fixed_right = changed(
        approvals()[1], lambda tree: groups(tree)[1].update(PreviousStageVariant="TFXR-CC4")
    )
    assert stage_findings(completed_build(previous), [fixed_right], schema) == []
    fixed_wrong = changed(
        approvals()[1], lambda tree: groups(tree)[1].update(PreviousStageVariant="TFXR-DC4")
    )
    found = stage_findings(completed_build(previous), [fixed_wrong], schema)
    assert [(f.code, f.owner) for f in found] == [("PREVIOUS_STAGE_DIFFERS", Owner.TYPE_APPROVAL)]
    assert found[0].path.endswith("ManufacturerGroup[2]/PreviousStageVariant")


def test_a_stage_that_changes_neither_number_nor_variant_nor_version_is_refused(
    schema: IviSchema, previous: PreviousStage
) -> None:
    completed = approvals()[1]
    same = previous.model_copy(
        update={
            "approval_number": completed.number,
            "variant": completed.variant,
            "version": completed.version,
        }
    )
    assert [f.code for f in stage_findings(completed_build(same), [completed], schema)] == [
        "STAGE_NOT_CHANGED"
    ]
    only_version = same.model_copy(update={"version": "DS-CC4-22D"})
    assert stage_findings(completed_build(only_version), [completed], schema) == []


def test_the_restated_stage_one_names_the_base_certificates_manufacturer(
    schema: IviSchema, previous: PreviousStage
) -> None:
    completed = changed(approvals()[1], lambda tree: groups(tree)[0].update(ManufacturerName="SOMEONE ELSE"))
    found = stage_findings(completed_build(previous), [completed], schema)
    assert [f.code for f in found] == ["PREVIOUS_STAGE_NOT_RESTATED"]
    assert found[0].path.endswith("ManufacturerGroup[1]/ManufacturerName")


# --- the base certificate -------------------------------------------------------------------------


def test_a_base_certificate_gives_the_facts_of_its_last_stage(base_xml: bytes, schema: IviSchema) -> None:

    base = read_base(base_xml, schema)
    facts = base.previous_stage
    chassis = approvals()[0]
    assert facts.sha256 == hashlib.sha256(base_xml).hexdigest()
    assert (facts.vin, facts.stage) == (chassis_build().vin, 1)
    assert (facts.approval_number, facts.type, facts.variant, facts.version) == (
        chassis.number,
        chassis.type,
        chassis.variant,
        chassis.version,
    )
    assert facts.manufacturer == "FORD MOTOR COMPANY OF SOUTHERN AFRICA (PTY) LTD"
    assert base.stage_of_completion == "I" and "Development eCoC Seal" in base.signer
    assert f"<IviReferenceId>{facts.reference_id}</IviReferenceId>".encode() in base_xml


def test_a_base_certificate_changed_after_sealing_is_refused(base_xml: bytes, schema: IviSchema) -> None:
    tampered = base_xml.replace(b"<PreviousStage", b"<PreviousStage").replace(b"TFXR-CC4", b"TFXR-CC5", 1)
    assert tampered != base_xml
    with pytest.raises(BaseCertificateError, match="seal is not intact"):
        read_base(tampered, schema)


def test_an_unsigned_base_certificate_is_refused_by_the_schema(schema: IviSchema) -> None:
    chassis = approvals()[0]
    unsigned = render(chassis_build(), chassis, version_number=1, schema=schema)
    with pytest.raises(BaseCertificateError, match=r"not valid against IVI 2\.0"):
        read_base(unsigned, schema)


def test_a_comment_inside_a_value_of_a_base_certificate_is_refused(
    base_xml: bytes, schema: IviSchema
) -> None:
    hidden = base_xml.replace(b"<Variant>TFXR-CC4", b"<Variant>TFXR<!---->-CC4", 1)
    with pytest.raises(BaseCertificateError, match="comment inside its value"):
        read_base(hidden, schema)


# --- the stage-2 certificate ------------------------------------------------------------------------


def stage_two_document(previous: PreviousStage, schema: IviSchema, seal: Seal) -> bytes:
    return seal.sign(render(completed_build(previous), approvals()[1], version_number=1, schema=schema))


def test_a_stage_two_certificate_names_its_previous_stage_and_passes_the_official_schema(
    previous: PreviousStage, schema: IviSchema, xsd_path: Path, ford_seal: Seal
) -> None:
    signed = stage_two_document(previous, schema, ford_seal)
    root = parse_bytes(signed)
    assert validate(load_ivi_schema(xsd_path), root) == []
    ns = {"i": "http://eu.ereg.initialvehicleinformation.v2"}
    last = root.findall("i:CocDataGroup/i:ManufacturerTable/i:ManufacturerGroup", ns)[-1]
    named = {
        name: last.findtext(f"i:PreviousStage{name}", namespaces=ns)
        for name in ("TypeApprovalNumber", "Type", "Variant", "Version")
    }
    assert named == {
        "TypeApprovalNumber": previous.approval_number,
        "Type": previous.type,
        "Variant": previous.variant,
        "Version": previous.version,
    }
    assert root.findtext("i:CocDataGroup/i:StageOfCompletion", namespaces=ns) == "V"
    assert root.findtext("i:CocDataGroup/i:VehicleIdentificationNumber", namespaces=ns) == previous.vin


def test_a_stage_two_render_without_a_previous_stage_leaves_the_elements_out_and_the_template_intact(
    previous: PreviousStage, schema: IviSchema
) -> None:
    completed = approvals()[1]
    bare = render(
        completed_build(previous).model_copy(update={"previous_stage": None}),
        completed,
        version_number=1,
        schema=schema,
    )
    assert b"PreviousStage" not in bare
    again = render(completed_build(previous), completed, version_number=1, schema=schema)
    assert again.count(b"<PreviousStageType>TFXR</PreviousStageType>") == 1


def test_the_stage_one_certificate_names_no_previous_stage(base_xml: bytes) -> None:
    assert b"PreviousStage" not in base_xml and b"<StageOfCompletion>I</StageOfCompletion>" in base_xml


@pytest.mark.skipif(XMLSEC1 is None, reason="make test installs xmlsec1")
def test_a_sealed_stage_two_certificate_verifies_with_our_verifier_and_xmlsec1(
    previous: PreviousStage, schema: IviSchema, ford_seal: Seal, dev: DevSeal, tmp_path: Path
) -> None:
    signed = stage_two_document(previous, schema, ford_seal)
    assert verify(signed, dev.cert_pem).valid
    document, cert = tmp_path / "stage2.xml", tmp_path / "seal.crt"
    document.write_bytes(signed)
    cert.write_bytes(dev.cert_pem)
    assert XMLSEC1 is not None
    result = subprocess.run(
        [XMLSEC1, "--verify", "--enabled-reference-uris", "empty", "--trusted-pem", str(cert), str(document)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# --- coc ivi import --base ------------------------------------------------------------------------


def test_coc_ivi_import_base_writes_the_previous_stage_a_completed_build_names(
    base_xml: bytes, previous: PreviousStage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "chassis.xml"
    source.write_bytes(base_xml)
    assert main(["ivi", "import", "--base", str(source), "--out", str(tmp_path / "out")]) == 0
    written = (tmp_path / "out" / "previous_stage.json").read_text(encoding="utf-8")
    assert PreviousStage.model_validate_json(written) == previous
    assert "the signer is not trusted by this check" in capsys.readouterr().out


def test_coc_ivi_import_base_refuses_a_tampered_certificate_in_one_line(
    base_xml: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "chassis.xml"
    source.write_bytes(base_xml.replace(b"TFXR-CC4", b"TFXR-CC5", 1))
    assert main(["ivi", "import", "--base", str(source), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert "seal is not intact" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out" / "previous_stage.json").exists()
