"""Approval uploads: the template round trip, XLSX/CSV/JSON/IVI parsing, per-row errors, limits and the diff."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from services.workspace.approvals import ApprovalBook
from services.workspace.upload import files, template
from services.workspace.upload.columns import FIELD_COLUMNS, template_columns
from services.workspace.upload.diff import FieldChange, against
from services.workspace.upload.files import parse
from shared.contracts import Approval
from shared.contracts.approvals import ApprovalSource, master_data_sha256, same_master_data
from shared.ivi import PER_VEHICLE, IviSchema
from shared.ivi_import import import_document

pytestmark = pytest.mark.unit

MASS = "CocDataGroup/MassGroup/MassInRunningOrder"
T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def specimen(xsd_path: Path) -> bytes:
    return (xsd_path.parent / "specimen-M1-CHR.xml").read_bytes()


@pytest.fixture(scope="module")
def approval(specimen: bytes, schema: IviSchema) -> Approval:
    return import_document(specimen, schema)[0]


def other_version(approval: Approval, version: str) -> Approval:
    return approval.model_copy(update={"version": version})


def with_mass(approval: Approval, mass: str) -> Approval:
    tree = json.loads(json.dumps(approval.certificate))
    tree["MassGroup"]["MassInRunningOrder"] = mass
    return approval.model_copy(update={"certificate": tree})


def sheet_of(rows: list[list[str]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def filled_template(schema: IviSchema, approvals: list[Approval]) -> bytes:
    """The downloaded (empty) template, filled in as a person would: one row per approval, by column name."""
    book = load_workbook(io.BytesIO(template.as_xlsx(schema)))
    sheet = book[template.SHEET]
    header = [cell.value for cell in sheet[1]]
    for approval in approvals:
        cells = template.cells(approval)
        for name in cells:
            if name not in header:  # a second axle, tyre option...: the person adds its column
                header.append(name)
                sheet.cell(1, len(header), name)
        sheet.append([cells.get(name, "") for name in header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_the_template_names_the_contract_fields_and_the_schemas_ivi_paths_but_no_per_vehicle_element(
    schema: IviSchema,
) -> None:
    names = [column.name for column in template_columns(schema)]
    assert names[:3] == [
        "CocDataGroup/TypeApprovalNumber",
        "CocDataGroup/TypeApprovalIssueDate",
        "Header/DesignatedTypeApprovalCountry",
    ]
    assert {"wmis", "actual_mass_min_kg", MASS, "CocDataGroup/AxleTable/AxleGroup[1]/AxleNumber"} <= set(
        names
    )
    assert (
        "CocDataGroup/VehicleIdentificationNumber" not in names
        and "CocDataGroup/MassGroup/ActualMass" not in names
    )
    leaves = names[len(FIELD_COLUMNS) :]
    assert not any(name.removeprefix("CocDataGroup/") in PER_VEHICLE for name in leaves)
    book = load_workbook(io.BytesIO(template.as_xlsx(schema)))
    notes = {row[0]: row for row in book[template.NOTES].iter_rows(min_row=2, values_only=True)}
    assert (
        notes["CocDataGroup/TypeApprovalType"][1] == "yes"
        and "ESS, EU, NSS" in notes["CocDataGroup/TypeApprovalType"][2]
    )
    assert next(csv.reader(io.StringIO(template.as_csv(schema).decode())))[: len(FIELD_COLUMNS)] == list(
        FIELD_COLUMNS.values()
    )


def test_the_downloaded_template_filled_in_parses_back_to_the_same_approvals(
    schema: IviSchema, approval: Approval
) -> None:
    second = with_mass(other_version(approval, "V2"), "1400")
    parsed = parse(filled_template(schema, [approval, second]), schema)
    assert (parsed.kind, parsed.errors, parsed.rows) == ("XLSX", (), 2)
    assert list(parsed.approvals) == [approval, second]


@pytest.mark.parametrize("kind", ["CSV", "XLSX"])
def test_a_filled_sheet_written_by_the_workspace_parses_back(
    schema: IviSchema, approval: Approval, kind: str
) -> None:
    content = template.as_csv(schema, [approval]) if kind == "CSV" else template.as_xlsx(schema, [approval])
    parsed = parse(content, schema)
    assert (parsed.kind, parsed.ok, parsed.approvals) == (kind, True, (approval,))


def test_json_one_object_or_a_list_parses_and_a_source_in_it_is_dropped(
    schema: IviSchema, approval: Approval
) -> None:
    data = approval.model_dump(mode="json")
    data["source"] = {"by": "someone else", "via": "workspace", "at": "2026-12-01T00:00:00Z"}
    assert parse(json.dumps(data).encode(), schema).approvals == (approval,)
    listed = parse(json.dumps([approval.model_dump(mode="json")]).encode(), schema)
    assert (listed.kind, listed.approvals) == ("JSON", (approval,))


def test_an_existing_ivi_certificate_is_a_starting_point(
    schema: IviSchema, specimen: bytes, approval: Approval
) -> None:
    parsed = parse(specimen, schema)
    assert (parsed.kind, parsed.approvals) == ("IVI 2.0 certificate", (approval,))
    broken = parse(specimen.replace(b"<Type>", b"<Tipe>", 1).replace(b"</Type>", b"</Tipe>", 1), schema)
    assert broken.errors and broken.errors[0].rule == "IVI 2.0 import" and broken.errors[0].row == 1


def test_each_bad_row_is_named_by_row_column_and_rule_and_good_rows_are_not_blamed(
    schema: IviSchema, approval: Approval
) -> None:
    bad_mass = with_mass(other_version(approval, "V2"), "heavy")
    content = template.as_csv(schema, [approval, bad_mass, other_version(approval, "V3")])
    parsed = parse(content, schema)
    assert not parsed.ok and len(parsed.approvals) == 2
    (error,) = parsed.errors
    assert (error.row, error.column, error.rule) == (3, MASS, "IVI 2.0 schema")
    assert "'heavy' is not a whole number" in error.message


def test_contract_errors_name_the_fields_column(schema: IviSchema, approval: Approval) -> None:
    rows = template.as_csv(schema, [approval]).decode().splitlines()
    header = next(csv.reader([rows[0]]))
    values = next(csv.reader([rows[1]]))
    values[header.index("CocDataGroup/TypeApprovalNumber")] = "E6-2018-858"
    values[header.index("actual_mass_min_kg")] = "2000"
    values[header.index("actual_mass_max_kg")] = "1000"
    out = io.StringIO()
    csv.writer(out).writerows([header, values])
    errors = parse(out.getvalue().encode(), schema).errors
    assert [(e.row, e.column, e.rule) for e in errors] == [
        (2, "CocDataGroup/TypeApprovalNumber", "approval contract")
    ]
    assert "must look like e6*2018/858*00294*01" in errors[0].message


@pytest.mark.parametrize(
    ("column", "rule", "says"),
    [
        (
            "CocDataGroup/MassGroup/MassInRunOrder",
            "IVI path",
            "MassInRunOrder is not an element of MassGroup",
        ),
        ("Colour", "template column", "not a column of the template"),
        ("CocDataGroup/MassGroup[2]/MassInRunningOrder", "IVI path", "MassGroup occurs once"),
        ("CocDataGroup/MassGroup", "IVI path", "is a group: name one of its elements"),
        ("CocDataGroup/VehicleIdentificationNumber", "IVI 2.0 schema", "per-vehicle element"),
    ],
)
def test_a_column_that_names_no_element_an_approval_may_fix_is_an_error(
    schema: IviSchema, approval: Approval, column: str, rule: str, says: str
) -> None:
    rows = [[*template.cells(approval), column], [*template.cells(approval).values(), "1"]]
    (error,) = parse(sheet_of(rows), schema).errors
    assert (error.row, error.column, error.rule) == (2, column, rule) and says in error.message


def test_an_item_numbered_past_an_empty_one_is_an_error(schema: IviSchema, approval: Approval) -> None:
    cells = template.cells(approval)
    assert "CocDataGroup/AxleTable/AxleGroup[2]/AxleNumber" in cells  # the specimen has two axles
    gap = "CocDataGroup/AxleTable/AxleGroup[4]/AxleNumber"
    (error,) = parse(sheet_of([[*cells, gap], [*cells.values(), "4"]]), schema).errors
    assert (error.row, error.column, error.rule) == (2, "CocDataGroup/AxleTable/AxleGroup[3]", "IVI path")


def test_two_rows_for_one_key_are_an_error_on_the_second(schema: IviSchema, approval: Approval) -> None:
    (error,) = parse(template.as_csv(schema, [approval, with_mass(approval, "1400")]), schema).errors
    assert (error.row, error.rule) == (3, "one row per approval key") and "row 2" in error.message


def test_limits_are_named_and_nothing_is_taken(
    schema: IviSchema, approval: Approval, monkeypatch: pytest.MonkeyPatch
) -> None:
    too_big = parse(b"x" * (files.MAX_BYTES + 1), schema)
    assert too_big.approvals == () and f"at most {files.MAX_BYTES}" in too_big.errors[0].message
    monkeypatch.setattr(files, "MAX_ROWS", 2)
    versions = [other_version(approval, f"V{n}") for n in range(3)]
    for content in (
        template.as_csv(schema, versions),
        json.dumps([a.model_dump(mode="json") for a in versions]).encode(),
    ):
        parsed = parse(content, schema)
        assert (
            parsed.approvals == ()
            and parsed.errors[0].rule == "upload limit"
            and "at most 2" in parsed.errors[0].message
        )


def test_files_that_are_not_what_they_claim_get_one_error(schema: IviSchema) -> None:
    assert parse(b"PK\x03\x04broken", schema).errors[0].message.startswith("not an XLSX workbook")
    assert parse(b"{nope", schema).errors[0].message.startswith("not JSON")
    assert parse(b"\xff\xfe\x00a", schema).errors[0].message.startswith("not UTF-8 text")
    assert parse(b"CocDataGroup/Type\n", schema).errors[0].message.startswith("the file holds no approval")


def test_the_diff_names_each_changed_ivi_path_old_and_new_and_new_keys(approval: Approval) -> None:
    book = ApprovalBook()
    book.add(approval, T0)
    changed = with_mass(approval, "1400")
    new = other_version(approval, "V9")
    first, second, third = against(book.get, [changed, new, approval])
    old_mass = approval.certificate["MassGroup"]["MassInRunningOrder"]
    assert first.changes == (FieldChange(MASS, old_mass, "1400"),) and not first.new
    assert second.new and second.changes == ()
    assert third.unchanged


def test_who_published_is_not_master_data(approval: Approval) -> None:
    signed = approval.model_copy(update={"source": ApprovalSource(by="Thandi Nkosi", via="workspace", at=T0)})
    assert master_data_sha256(signed) == master_data_sha256(approval) and same_master_data(approval, signed)
    book = ApprovalBook()
    assert book.add(approval, T0) is not None
    assert book.add(signed, T0) is None  # the same values again, by someone else: no change


def test_the_history_names_the_person_and_says_what_they_changed(approval: Approval) -> None:
    book = ApprovalBook()
    first = book.add(approval, T0)
    source = ApprovalSource(
        by="Thandi Nkosi", via="workspace", at=T0 + dt.timedelta(hours=1), comment="weighed"
    )
    change = book.add(with_mass(approval, "1400").model_copy(update={"source": source}), T0)
    assert first is not None and first.by == "type-approval (intake API)"
    assert change is not None and (change.by, change.at, change.changed) == (
        "Thandi Nkosi",
        source.at,
        (MASS,),
    )
    assert change.sentence == "Thandi Nkosi changed 1 field in the workspace."


def test_errors_past_the_limit_are_counted_not_listed(
    schema: IviSchema, approval: Approval, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_ERRORS", 1)
    bad = [with_mass(other_version(approval, f"V{n}"), "heavy") for n in range(3)]
    first, more = parse(template.as_csv(schema, bad), schema).errors
    assert first.row == 2 and (more.rule, more.message) == (
        "upload limit",
        "2 more errors not listed; correct these first",
    )


def test_a_value_that_would_start_a_formula_is_quoted_in_the_csv_and_parses_back_as_it_was(
    schema: IviSchema, approval: Approval
) -> None:
    tree = json.loads(json.dumps(approval.certificate))
    tree["RemarkTable"]["RemarkGroup"][0]["Remark"] = "=HYPERLINK(1)"
    remarked = approval.model_copy(update={"certificate": tree})
    content = template.as_csv(schema, [remarked]).decode()
    assert ",'=HYPERLINK(1)," in content or content.rstrip().endswith(",'=HYPERLINK(1)")
    assert parse(content.encode(), schema).approvals == (remarked,)


def test_json_nested_past_the_parsers_depth_is_refused_naming_the_limit(schema: IviSchema) -> None:
    parsed = parse(b"[" * 50_000 + b"]" * 50_000, schema)
    assert [e.rule for e in parsed.errors] == [files.LIMIT]
    assert "nested deeper" in parsed.errors[0].message


def test_a_control_character_in_an_approvals_variant_is_a_row_error_naming_it(
    approval: Approval, schema: IviSchema
) -> None:
    item = {**approval.model_dump(mode="json"), "variant": "V\u0007X"}
    parsed = parse(json.dumps([item]).encode(), schema)
    assert parsed.approvals == ()
    assert [(e.row, e.column, e.rule) for e in parsed.errors] == [
        (1, "CocDataGroup/Variant", "approval contract")
    ]
    assert "control characters" in parsed.errors[0].message
