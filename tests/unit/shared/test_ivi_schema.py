"""Schema knowledge read from the official IVI 2.0 XSD: order, occurrences, types, tree checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from shared.ivi import NAMESPACE, PER_VEHICLE, IviSchema, IviTreeError, without_paths
from shared.xml import parse_bytes

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def specimen_tree(schema: IviSchema, xsd_path: Path) -> dict[str, Any]:
    root = parse_bytes((xsd_path.parent / "specimen-M1-CHR.xml").read_bytes())
    return schema.decode(root)


@pytest.fixture
def approval_tree(specimen_tree: dict[str, Any]) -> dict[str, Any]:
    """The specimen's certificate as an approval holds it: without the per-vehicle elements."""
    return copy.deepcopy(without_paths(specimen_tree["CocDataGroup"], PER_VEHICLE))


def _paths(problems: list[Any]) -> list[str]:
    return [problem.path for problem in problems]


def test_load_returns_the_same_schema_for_the_same_file(xsd_path: Path) -> None:
    assert IviSchema.load(xsd_path) is IviSchema.load(str(xsd_path))


def test_header_children_come_in_schema_order_with_their_occurrences(schema: IviSchema) -> None:
    children = schema.complex_type("Header").children
    assert [(child.name, child.required) for child in children] == [
        ("IviReferenceId", True),
        ("IviVersionNumberXsd", True),
        ("IviVersionNumber", True),
        ("IviVersionDateTime", True),
        ("IntendedCountryRegistration", False),
        ("DesignatedTypeApprovalCountry", True),
    ]
    assert children[2].type_name == "Integer2" and not children[2].is_complex


def test_certificate_group_knows_required_optional_repeated_and_complex_children(schema: IviSchema) -> None:
    certificate = schema.complex_type("CocDataGroup")
    names = [child.name for child in certificate.children]
    assert names[:4] == [
        "VehicleIdentificationNumber",
        "TypeApprovalType",
        "ProvisionalTypeApprovalIndicator",
        "StageOfCompletion",
    ]
    assert names.index("SigningAuthorityTable") < names.index("MassGroup") < names.index("RemarkTable")
    vin, manufactured = (
        certificate.child("VehicleIdentificationNumber"),
        certificate.child("DateManufactureVehicle"),
    )
    assert vin is not None and vin.required and not vin.repeated
    assert manufactured is not None and not manufactured.required
    signers = certificate.child("SigningAuthorityTable")
    assert signers is not None and signers.required and signers.is_complex
    axle = schema.complex_type("AxleTable").child("AxleGroup")
    assert axle is not None and axle.repeated and axle.max_occurs is None and axle.is_complex
    members = schema.complex_type("AxleGroupMemberTable").child("AxleGroupMemberGroup")
    assert members is not None and members.min_occurs == 2


def test_every_per_vehicle_path_names_an_element_of_the_schema(schema: IviSchema) -> None:
    for path in PER_VEHICLE:
        assert schema.declaration(f"CocDataGroup/{path}").name == path.rsplit("/", 1)[-1]


def test_declaration_follows_a_path_with_indexes(schema: IviSchema) -> None:
    decl = schema.declaration("CocDataGroup/AxleTable/AxleGroup[2]/AxleTrack")
    assert (decl.name, decl.type_name, decl.min_occurs) == ("AxleTrack", "Integer4", 0)
    with pytest.raises(IviTreeError, match="Wheelbase is not a child of MassGroup"):
        schema.declaration("CocDataGroup/MassGroup/Wheelbase")


def test_specimen_certificate_without_per_vehicle_elements_has_no_problems(
    schema: IviSchema, approval_tree: dict[str, Any]
) -> None:
    assert schema.check_tree(approval_tree) == []


def test_complete_specimen_certificate_passes_when_nothing_is_exempt(
    schema: IviSchema, specimen_tree: dict[str, Any]
) -> None:
    assert schema.check_tree(specimen_tree["CocDataGroup"], per_vehicle=()) == []


def test_check_tree_reports_an_unknown_element_at_its_path(
    schema: IviSchema, approval_tree: dict[str, Any]
) -> None:
    approval_tree["MassGroup"]["MassInRuningOrder"] = "1520"
    problems = schema.check_tree(approval_tree)
    assert _paths(problems) == ["CocDataGroup/MassGroup/MassInRuningOrder"]
    assert "unknown element" in problems[0].message and "MassInRunningOrder" in problems[0].message


def test_check_tree_reports_a_missing_required_child_inside_a_present_group(
    schema: IviSchema, approval_tree: dict[str, Any]
) -> None:
    del approval_tree["ManufacturerTable"]["ManufacturerGroup"][0]["ManufacturerName"]
    problems = schema.check_tree(approval_tree)
    assert _paths(problems) == ["CocDataGroup/ManufacturerTable/ManufacturerGroup[1]/ManufacturerName"]
    assert "required" in problems[0].message


def test_check_tree_does_not_require_children_of_an_absent_optional_group(
    schema: IviSchema, approval_tree: dict[str, Any]
) -> None:
    del approval_tree["EURepresentativeGroup"]
    assert schema.check_tree(approval_tree) == []
    approval_tree["EURepresentativeGroup"] = {"EURepresentativeAddressLine1": "BOURGETLAAN 60"}
    assert "CocDataGroup/EURepresentativeGroup/EURepresentativeName" in _paths(
        schema.check_tree(approval_tree)
    )


def test_check_tree_reports_a_bad_enumeration_value(schema: IviSchema, approval_tree: dict[str, Any]) -> None:
    approval_tree["GearGroup"]["GearboxType"] = "Q"
    problems = schema.check_tree(approval_tree)
    assert _paths(problems) == ["CocDataGroup/GearGroup/GearboxType"]
    assert "'Q'" in problems[0].message and "GearboxTypeCode" in problems[0].message


def test_check_tree_indexes_repeated_groups_in_the_path(
    schema: IviSchema, approval_tree: dict[str, Any]
) -> None:
    approval_tree["AxleTable"]["AxleGroup"][1]["AxleTrack"] = "wide"
    assert _paths(schema.check_tree(approval_tree)) == ["CocDataGroup/AxleTable/AxleGroup[2]/AxleTrack"]


def test_check_tree_reports_a_list_where_one_element_is_allowed(
    schema: IviSchema, approval_tree: dict[str, Any]
) -> None:
    approval_tree["DimensionGroup"] = [approval_tree["DimensionGroup"]]
    approval_tree["MakeTable"]["MakeGroup"] = {"Make": "TOYOTA"}
    problems = schema.check_tree(approval_tree)
    assert _paths(problems) == ["CocDataGroup/MakeTable/MakeGroup", "CocDataGroup/DimensionGroup"]


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        ("MaximumSpeed", "1000", "maximum 999.99"),
        ("MaximumSpeed", "12.345", "3 decimals"),
        ("MaximumSpeed", "fast", "not a decimal"),
        ("MaximumSpeed", True, "not bool"),
        ("TypeApprovalType", "EU-WIDE", "TypeApprovalTypeCode"),
        ("ExhaustEmissionLatestRegulationNumber", "x" * 36, "at most 35"),
    ],
)
def test_check_tree_reports_leaf_values_their_simple_type_refuses(
    schema: IviSchema, approval_tree: dict[str, Any], path: str, value: object, fragment: str
) -> None:
    approval_tree[path] = value
    problems = schema.check_tree(approval_tree)
    assert _paths(problems) == [f"CocDataGroup/{path}"]
    assert fragment in problems[0].message


def test_check_tree_accepts_numbers_for_numeric_leaves(
    schema: IviSchema, approval_tree: dict[str, Any]
) -> None:
    approval_tree["MassGroup"]["MassInRunningOrder"] = 1520
    approval_tree["MaximumSpeed"] = 175.5
    assert schema.check_tree(approval_tree) == []


def test_per_vehicle_elements_are_not_required_but_reported_when_an_approval_carries_them(
    schema: IviSchema, approval_tree: dict[str, Any]
) -> None:
    assert "VehicleIdentificationNumber" not in approval_tree
    approval_tree["MassGroup"]["ActualMass"] = "1547"
    approval_tree["Type"] = "AX2T(M)"
    messages = {problem.path: problem.message for problem in schema.check_tree(approval_tree)}
    assert set(messages) == {"CocDataGroup/Type", "CocDataGroup/MassGroup/ActualMass"}
    assert "approval's own field 'type'" in messages["CocDataGroup/Type"]
    assert "build record" in messages["CocDataGroup/MassGroup/ActualMass"]


def test_without_paths_strips_per_vehicle_elements_inside_repeated_groups(
    specimen_tree: dict[str, Any],
) -> None:
    stripped = without_paths(specimen_tree["CocDataGroup"], PER_VEHICLE)
    tyres = stripped["AxleTable"]["AxleGroup"][0]["TyreAxleTable"]["TyreAxleGroup"]
    assert tyres[0]["TyreSize"] == "225/50R19"
    assert all("TyreFittedProductionIndicator" not in tyre for tyre in tyres)
    assert "SignatureDate" not in stripped["SigningAuthorityTable"]["SigningAuthorityGroup"][0]
    assert "ActualMass" not in stripped["MassGroup"] and "ColourTable" not in stripped
    assert (
        "TyreFittedProductionIndicator"
        in specimen_tree["CocDataGroup"]["AxleTable"]["AxleGroup"][0]["TyreAxleTable"]["TyreAxleGroup"][0]
    )  # the input is left as it was


def test_encode_writes_children_in_schema_order_whatever_the_tree_order(schema: IviSchema) -> None:
    parent = etree.Element(f"{{{NAMESPACE}}}Header")
    tree = {
        "DesignatedTypeApprovalCountry": "e6",
        "IviVersionDateTime": "2024-02-01T13:35:10.500+02:00",
        "IviVersionNumber": 1,
        "IviReferenceId": "6a2957d3-4a32-41a6-a2d0-50681e0bf5e1",
        "IviVersionNumberXsd": "2.0",
    }
    schema.encode(tree, parent)
    assert [etree.QName(child).localname for child in parent] == [
        "IviReferenceId",
        "IviVersionNumberXsd",
        "IviVersionNumber",
        "IviVersionDateTime",
        "DesignatedTypeApprovalCountry",
    ]
    assert parent[2].text == "1"


def test_encode_then_decode_gives_back_the_specimen_tree(
    schema: IviSchema, specimen_tree: dict[str, Any]
) -> None:
    shuffled = dict(reversed(list(specimen_tree["CocDataGroup"].items())))
    root = etree.Element(f"{{{NAMESPACE}}}InitialVehicleInformation", nsmap={None: NAMESPACE})  # type: ignore[dict-item]
    schema.encode({"Header": specimen_tree["Header"], "CocDataGroup": shuffled}, root)
    assert schema.decode(root) == specimen_tree
    assert schema.unsigned_validator.validate(root)


def test_encode_refuses_an_element_the_group_does_not_have(schema: IviSchema) -> None:
    parent = etree.Element(f"{{{NAMESPACE}}}MassGroup")
    with pytest.raises(IviTreeError) as raised:
        schema.encode({"MassInRunningOrder": "1520", "Colour": "1"}, parent)
    assert raised.value.path == "MassGroup/Colour"


def test_decode_refuses_an_element_outside_the_schema(schema: IviSchema) -> None:
    group = etree.fromstring(f'<MassGroup xmlns="{NAMESPACE}"><Weight>5</Weight></MassGroup>')
    with pytest.raises(IviTreeError, match="MassGroup/Weight"):
        schema.decode(group)
