"""Importing an IVI 2.0 document as approval and build record, and rendering it back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from cli.main import main
from devkit.ivi_import import IviImportError, import_document
from services.render.document import render
from services.validation.policy import RulePolicy
from services.validation.rules import ApprovalTable, check
from shared.contracts import Approval, BuildRecord, FittedTyre
from shared.ivi import NAMESPACE, IviSchema
from shared.xml import parse_bytes

pytestmark = pytest.mark.unit

NS = f"{{{NAMESPACE}}}"


@pytest.fixture(scope="module")
def specimen_path(xsd_path: Path) -> Path:
    return xsd_path.parent / "specimen-M1-CHR.xml"


@pytest.fixture(scope="module")
def specimen(specimen_path: Path) -> bytes:
    return specimen_path.read_bytes()


@pytest.fixture(scope="module")
def imported(specimen: bytes, schema: IviSchema) -> tuple[Approval, BuildRecord]:
    return import_document(specimen, schema)


def _edited(specimen: bytes, old: bytes, new: bytes) -> bytes:
    assert specimen.count(old) == 1
    return specimen.replace(old, new)


def _leaves(tree: Any, path: str = "") -> dict[str, str]:
    """Every leaf of a decoded tree by its indexed path: lists keep their order, groups do not."""
    if isinstance(tree, dict):
        return {k: v for name, value in tree.items() for k, v in _leaves(value, f"{path}/{name}").items()}
    if isinstance(tree, list):
        return {k: v for i, item in enumerate(tree, 1) for k, v in _leaves(item, f"{path}[{i}]").items()}
    return {path.lstrip("/"): tree}


def test_approval_fields_come_from_the_certificate_and_header(imported: tuple[Approval, BuildRecord]) -> None:
    approval, _build = imported
    assert approval.key == "e6*2018/858*00294*01|AX2T(M)|ZYX20(H)|AX2T0L-AHXEBW(2B)"
    assert (approval.issue_date, approval.designated_country, approval.category) == (
        dt.date(2023, 12, 18),
        "e6",
        "M1",
    )
    assert approval.wmis == ("JTA",)
    # MassInRunningOrder is the floor; the specimen has AllowedActualMass but no ...Max.
    assert (approval.actual_mass_min_kg, approval.actual_mass_max_kg) == (1520, 1615)


def test_approval_certificate_holds_no_per_vehicle_elements(imported: tuple[Approval, BuildRecord]) -> None:
    certificate = imported[0].certificate
    for name in (
        "VehicleIdentificationNumber",
        "DateManufactureVehicle",
        "ColourTable",
        "Type",
        "TypeApprovalNumber",
    ):
        assert name not in certificate, name
    assert "ActualMass" not in certificate["MassGroup"]
    assert certificate["MassGroup"]["MassInRunningOrder"] == "1520"
    first_tyre = certificate["AxleTable"]["AxleGroup"][0]["TyreAxleTable"]["TyreAxleGroup"][0]
    assert "TyreFittedProductionIndicator" not in first_tyre and first_tyre["TyreSize"] == "225/50R19"
    assert "SignatureDate" not in certificate["SigningAuthorityTable"]["SigningAuthorityGroup"][0]


def test_build_record_holds_the_vehicles_own_values(imported: tuple[Approval, BuildRecord]) -> None:
    approval, build = imported
    assert build.vin == "JTAM1C0MPTEST0010"
    assert build.build_id == "import-6a2957d3-4a32-41a6-a2d0-50681e0bf5e1"
    assert (build.revision, build.plant, build.vehicle_group) == (1, "imported", "AX2T(M)")
    assert build.manufactured_on == dt.date(2024, 2, 1)
    assert build.approval.key == approval.key
    assert (build.intended_country, build.actual_mass_kg, build.colours) == ("NL", 1547, ("1",))
    assert build.tyres == (FittedTyre(axle=1, option=1), FittedTyre(axle=2, option=1))
    assert build.released_at == dt.datetime(
        2024, 2, 1, 13, 35, 10, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )


def test_rendering_the_import_gives_back_the_specimen_certificate(
    imported: tuple[Approval, BuildRecord], specimen: bytes, schema: IviSchema
) -> None:
    approval, build = imported
    original = schema.decode(parse_bytes(specimen))
    rendered = schema.decode(parse_bytes(render(build, approval, version_number=1, schema=schema)))
    assert rendered["CocDataGroup"] == original["CocDataGroup"]
    different_header = {
        name for name in original["Header"] if original["Header"][name] != rendered["Header"].get(name)
    }
    assert different_header == {"IviReferenceId"}  # derived from the record id, not copied


def test_changing_the_vin_changes_only_the_vin_and_the_reference_id(
    imported: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = imported
    other = build.model_copy(update={"vin": "JTAM1C0MPTEST0099"})
    first = _leaves(schema.decode(parse_bytes(render(build, approval, version_number=1, schema=schema))))
    second = _leaves(schema.decode(parse_bytes(render(other, approval, version_number=1, schema=schema))))
    assert first.keys() == second.keys()
    assert {path for path in first if first[path] != second[path]} == {
        "Header/IviReferenceId",
        "CocDataGroup/VehicleIdentificationNumber",
    }
    assert second["CocDataGroup/VehicleIdentificationNumber"] == "JTAM1C0MPTEST0099"


def test_an_existing_signature_is_ignored(
    specimen: bytes, schema: IviSchema, imported: tuple[Approval, BuildRecord]
) -> None:
    root = parse_bytes(specimen)
    signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert signature is not None
    root.remove(signature)
    assert import_document(etree.tostring(root), schema) == imported


@pytest.mark.parametrize(
    ("xml", "fragment"),
    [
        (b"not xml at all", "not well-formed XML"),
        (b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "DTD"),
        (b'<Vehicle xmlns="urn:other"/>', "not an IVI 2.0 document"),
        (f'<InitialVehicleInformation xmlns="{NAMESPACE}"/>'.encode(), "InitialVehicleInformation/Header"),
    ],
)
def test_documents_that_are_not_ivi_are_refused_with_a_reason(
    schema: IviSchema, xml: bytes, fragment: str
) -> None:
    with pytest.raises(IviImportError, match=fragment):
        import_document(xml, schema)


def test_missing_required_element_is_named_by_its_path(specimen: bytes, schema: IviSchema) -> None:
    xml = _edited(specimen, b"<TypeApprovalNumber>e6*2018/858*00294*01</TypeApprovalNumber>", b"")
    with pytest.raises(IviImportError, match="CocDataGroup/TypeApprovalNumber: required element missing"):
        import_document(xml, schema)


def _without_manufacture_date(specimen: bytes) -> bytes:
    return _edited(specimen, b"<DateManufactureVehicle>2024-02-01</DateManufactureVehicle>", b"")


def test_a_document_without_a_date_of_manufacture_imports_and_renders_back_without_one(
    specimen: bytes, schema: IviSchema
) -> None:
    # The schema allows it, and the official L1e and L5e examples have none.
    xml = _without_manufacture_date(specimen)
    approval, build = import_document(xml, schema)
    assert build.manufactured_on is None
    rendered = schema.decode(parse_bytes(render(build, approval, version_number=1, schema=schema)))
    assert rendered["CocDataGroup"] == schema.decode(parse_bytes(xml))["CocDataGroup"]
    # An M1 certificate states it: validation names what is missing.
    found = check(build, ApprovalTable.of(schema, [approval]), RulePolicy(), dt.date(2024, 2, 2))
    assert [f.code for f in found] == ["MANUFACTURE_DATE_MISSING"]


def test_an_l_category_document_as_the_official_examples_write_it_imports_renders_back_and_is_clean(
    specimen: bytes, schema: IviSchema
) -> None:
    # As the official L1e and L5e examples: no date of manufacture, no colour, no tyre marked fitted.
    xml = _without_manufacture_date(specimen)
    xml = _edited(xml, b"<VehicleCategory>M1</VehicleCategory>", b"<VehicleCategory>L3e-A1</VehicleCategory>")
    xml = xml.replace(b"<TyreFittedProductionIndicator>Y</TyreFittedProductionIndicator>", b"")
    xml = xml.replace(b"<TyreFittedProductionIndicator>N</TyreFittedProductionIndicator>", b"")
    start, end = xml.index(b"<ColourTable>"), xml.index(b"</ColourTable>") + len(b"</ColourTable>")
    xml = xml[:start] + xml[end:]
    approval, build = import_document(xml, schema)
    assert (approval.category, build.manufactured_on, build.colours, build.tyres) == ("L3e-A1", None, (), ())
    rendered = schema.decode(parse_bytes(render(build, approval, version_number=1, schema=schema)))
    assert rendered["CocDataGroup"] == schema.decode(parse_bytes(xml))["CocDataGroup"]
    assert check(build, ApprovalTable.of(schema, [approval]), RulePolicy(), dt.date(2024, 2, 2)) == []


def test_value_outside_its_type_is_named_by_its_path(specimen: bytes, schema: IviSchema) -> None:
    xml = _edited(specimen, b"<GearboxType>C</GearboxType>", b"<GearboxType>Q</GearboxType>")
    with pytest.raises(IviImportError, match="CocDataGroup/GearGroup/GearboxType: 'Q'"):
        import_document(xml, schema)


def _run_cli(argv: list[str]) -> int:
    return main(argv)


def test_cli_writes_approval_and_build_json_that_load_back(
    specimen_path: Path, tmp_path: Path, imported: tuple[Approval, BuildRecord]
) -> None:
    out = tmp_path / "seed"
    assert _run_cli(["ivi", "import", str(specimen_path), "--out", str(out)]) == 0
    approval = Approval.model_validate(json.loads((out / "approval.json").read_text(encoding="utf-8")))
    build = BuildRecord.model_validate(json.loads((out / "build.json").read_text(encoding="utf-8")))
    assert (approval, build) == imported
    assert (out / "build.json").read_text(encoding="utf-8").startswith('{\n  "schema_version": 1,')


def test_cli_reports_a_missing_file_as_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli(["ivi", "import", str(tmp_path / "absent.xml"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_reports_a_document_with_a_dtd_as_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "dtd.xml"
    source.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "http://example.invalid/x.dtd"><x/>')
    assert _run_cli(["ivi", "import", str(source), "--out", str(tmp_path)]) == 2
    assert "DTD" in capsys.readouterr().err
    assert not (tmp_path / "approval.json").exists()


@pytest.mark.parametrize(
    ("inside", "kind"),
    [
        (b"15<!---->47", "a comment"),
        (b"15<?pi x?>47", "a processing instruction"),
        (b"<!-- 1547 -->", "a comment"),
    ],
)
def test_a_value_split_by_a_comment_or_processing_instruction_is_refused_not_half_read(
    specimen: bytes, schema: IviSchema, inside: bytes, kind: str
) -> None:
    xml = _edited(specimen, b"<ActualMass>1547</ActualMass>", b"<ActualMass>" + inside + b"</ActualMass>")
    with pytest.raises(
        IviImportError, match=f"CocDataGroup/MassGroup/ActualMass holds {kind} inside its value"
    ):
        import_document(xml, schema)


def test_a_comment_between_elements_holds_no_value_and_is_passed_over(
    specimen: bytes, schema: IviSchema, imported: tuple[Approval, BuildRecord]
) -> None:
    xml = _edited(
        specimen, b"<ActualMass>1547</ActualMass>", b"<!-- weighed --><ActualMass>1547</ActualMass>"
    )
    assert import_document(xml, schema) == imported


def test_the_documents_own_signature_date_is_kept_and_rendered_back(
    specimen: bytes, schema: IviSchema
) -> None:
    # Signed two days after the release time: the date is the document's, not IviVersionDateTime's.
    xml = _edited(
        specimen, b"<SignatureDate>2024-02-01</SignatureDate>", b"<SignatureDate>2024-02-03</SignatureDate>"
    )
    approval, build = import_document(xml, schema)
    assert build.signature_date == dt.date(2024, 2, 3)
    original = schema.decode(parse_bytes(xml))
    rendered = schema.decode(parse_bytes(render(build, approval, version_number=1, schema=schema)))
    assert _leaves(rendered["CocDataGroup"]) == _leaves(original["CocDataGroup"])


def test_check_reads_the_build_json_the_import_writes(specimen_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "seed"
    assert _run_cli(["ivi", "import", str(specimen_path), "--out", str(out)]) == 0
    argv = ["check", "--approvals", str(out / "approval.json"), "--builds", str(out / "build.json")]
    assert _run_cli(argv) == 0  # one build, pretty-printed over many lines, and clean


def test_render_says_the_warnings_it_renders_with(
    specimen: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As the official examples: released 2024-02-01, made and signed 2024-04-08.
    xml = _edited(
        specimen,
        b"<DateManufactureVehicle>2024-02-01</DateManufactureVehicle>",
        b"<DateManufactureVehicle>2024-04-08</DateManufactureVehicle>",
    )
    xml = _edited(
        xml, b"<SignatureDate>2024-02-01</SignatureDate>", b"<SignatureDate>2024-04-08</SignatureDate>"
    )
    source, out = tmp_path / "late.xml", tmp_path / "seed"
    source.write_bytes(xml)
    assert _run_cli(["ivi", "import", str(source), "--out", str(out)]) == 0
    capsys.readouterr()
    rendered = tmp_path / "late-rendered.xml"
    argv = ["render", "--approvals", str(out / "approval.json"), "--build", str(out / "build.json")]
    assert _run_cli([*argv, "--unsigned", "--out", str(rendered)]) == 0
    said = capsys.readouterr().err
    assert "warning" in said and "RELEASED_BEFORE_MANUFACTURE" in said
    assert rendered.exists()
