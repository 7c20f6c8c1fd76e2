"""Rendering a build record onto its approval: deterministic, schema-valid IVI 2.0, per-vehicle values in place."""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from services.render.document import RenderError, check, reference_id, render
from shared.contracts import Approval, ApprovalRef, BuildRecord, FittedTyre
from shared.ivi import NAMESPACE, PER_VEHICLE, IviSchema, without_paths
from shared.xml import parse_bytes

pytestmark = pytest.mark.unit

NS = {"ivi": NAMESPACE}
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
SAST = dt.timezone(dt.timedelta(hours=2))


@pytest.fixture(scope="module")
def approval(schema: IviSchema, xsd_path: Path) -> Approval:
    """The specimen's version as approval master data (built here, not by the importer)."""
    specimen = schema.decode(parse_bytes((xsd_path.parent / "specimen-M1-CHR.xml").read_bytes()))
    return Approval(
        number="e6*2018/858*00294*01",
        issue_date=dt.date(2023, 12, 18),
        designated_country="e6",
        type="AX2T(M)",
        variant="ZYX20(H)",
        version="AX2T0L-AHXEBW(2B)",
        category="M1",
        wmis=("JTA",),
        actual_mass_min_kg=1520,
        actual_mass_max_kg=1615,
        certificate=without_paths(specimen["CocDataGroup"], PER_VEHICLE),
    )


@pytest.fixture
def build(approval: Approval) -> BuildRecord:
    return BuildRecord(
        vin="JTAM1C0MPTEST0042",
        build_id="MES-0042",
        revision=2,
        manufactured_on=dt.date(2024, 3, 4),
        plant="Durban",
        vehicle_group="C-HR",
        approval=ApprovalRef(
            number=approval.number, type=approval.type, variant=approval.variant, version=approval.version
        ),
        intended_country="D",
        actual_mass_kg=1563,
        colours=("8", "1"),
        tyres=(FittedTyre(axle=1, option=2), FittedTyre(axle=2, option=3)),
        released_at=dt.datetime(2024, 3, 5, 8, 15, tzinfo=SAST),
    )


def _doc(data: bytes) -> etree._Element:
    return parse_bytes(data)


def _texts(doc: etree._Element, xpath: str) -> list[str]:
    found = doc.xpath(xpath, namespaces=NS)
    assert isinstance(found, list)
    return [str(element.text) for element in found if isinstance(element, etree._Element)]


def _text(doc: etree._Element, xpath: str) -> str:
    texts = _texts(doc, xpath)
    assert len(texts) == 1, f"{xpath}: {texts}"
    return texts[0]


def test_same_record_renders_to_the_same_bytes(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    first = render(build, approval, version_number=1, schema=schema)
    again = render(build, approval, version_number=1, schema=schema)
    fresh_objects = render(
        BuildRecord.model_validate_json(build.model_dump_json()),
        Approval.model_validate_json(approval.model_dump_json()),
        version_number=1,
        schema=schema,
    )
    assert first == again == fresh_objects
    assert first.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_rendered_document_is_valid_against_the_schema_with_the_signature_optional(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    doc = _doc(render(build, approval, version_number=1, schema=schema))
    assert check(doc, schema) == []
    assert doc.tag == f"{{{NAMESPACE}}}InitialVehicleInformation"
    assert doc.nsmap == {None: NAMESPACE}
    assert doc.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None
    assert not schema.validator.validate(doc)  # as published, the signature is still missing


def test_every_group_is_written_in_schema_order(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    doc = _doc(render(build, approval, version_number=1, schema=schema))
    checked = 0
    for element in doc.iter():
        if len(element) == 0:
            continue
        ctype = schema.complex_type(etree.QName(element).localname)
        positions = [ctype.order[etree.QName(child).localname] for child in element]
        assert positions == sorted(positions), etree.QName(element).localname
        checked += 1
    assert checked > 50


def test_header_carries_the_record_identity_and_time(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    doc = _doc(render(build, approval, version_number=3, schema=schema))
    header = [(etree.QName(child).localname, child.text) for child in doc[0]]
    assert header == [
        ("IviReferenceId", reference_id("JTAM1C0MPTEST0042:2")),
        ("IviVersionNumberXsd", "2.0"),
        ("IviVersionNumber", "3"),
        ("IviVersionDateTime", "2024-03-05T08:15:00.000+02:00"),
        ("IntendedCountryRegistration", "D"),
        ("DesignatedTypeApprovalCountry", "e6"),
    ]


def test_per_vehicle_values_land_in_their_elements(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    doc = _doc(render(build, approval, version_number=1, schema=schema))
    group = "/ivi:InitialVehicleInformation/ivi:CocDataGroup"
    assert _text(doc, f"{group}/ivi:VehicleIdentificationNumber") == "JTAM1C0MPTEST0042"
    assert _text(doc, f"{group}/ivi:DateManufactureVehicle") == "2024-03-04"
    assert _text(doc, f"{group}/ivi:MassGroup/ivi:ActualMass") == "1563"
    assert _text(doc, f"{group}/ivi:MassGroup/ivi:MassInRunningOrder") == "1520"  # the approval's value stays
    assert _texts(doc, f"{group}/ivi:ColourTable/ivi:ColourGroup/ivi:Colour") == ["8", "1"]
    assert (
        _text(doc, f"{group}/ivi:SigningAuthorityTable/ivi:SigningAuthorityGroup/ivi:SignatureDate")
        == "2024-03-05"
    )
    for element, value in [
        ("Type", "AX2T(M)"),
        ("VehicleCategory", "M1"),
        ("TypeApprovalIssueDate", "2023-12-18"),
    ]:
        assert _text(doc, f"{group}/ivi:{element}") == value


def test_fitted_tyre_is_y_on_its_axle_and_every_other_option_is_n(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    doc = _doc(render(build, approval, version_number=1, schema=schema))
    indicators = {}
    for axle in doc.iterfind(".//ivi:AxleGroup", NS):
        for tyre in axle.iterfind(".//ivi:TyreAxleGroup", NS):
            key = (
                axle.findtext("ivi:AxleNumber", namespaces=NS),
                tyre.findtext("ivi:TyreNumber", namespaces=NS),
            )
            indicators[key] = tyre.findtext("ivi:TyreFittedProductionIndicator", namespaces=NS)
    assert indicators == {
        ("1", "1"): "N",
        ("1", "2"): "Y",
        ("1", "3"): "N",
        ("2", "1"): "N",
        ("2", "2"): "N",
        ("2", "3"): "Y",
    }


def test_reference_id_is_a_uuid4_derived_from_vin_and_revision(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    first = _text(_doc(render(build, approval, version_number=1, schema=schema)), "//ivi:IviReferenceId")
    correction = build.model_copy(update={"revision": 3})
    second = _text(
        _doc(render(correction, approval, version_number=2, schema=schema)), "//ivi:IviReferenceId"
    )
    assert UUID4.fullmatch(first) and UUID4.fullmatch(second)
    assert uuid.UUID(first).version == 4 and uuid.UUID(first).variant == uuid.RFC_4122
    assert first != second
    assert first == reference_id("JTAM1C0MPTEST0042:2") != reference_id("JTAM1C0MPTEST0043:2")


def test_document_time_falls_back_to_noon_utc_on_the_build_date(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    unreleased = build.model_copy(update={"released_at": None})
    doc = _doc(render(unreleased, approval, version_number=1, schema=schema))
    assert _text(doc, "//ivi:IviVersionDateTime") == "2024-03-04T12:00:00.000+00:00"
    assert _text(doc, "//ivi:SignatureDate") == "2024-03-04"


def test_explicit_release_time_takes_the_place_of_the_records(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    released = dt.datetime(2024, 3, 6, 23, 30, 15, 123456, tzinfo=dt.UTC)
    doc = _doc(render(build, approval, version_number=1, schema=schema, released_at=released))
    assert _text(doc, "//ivi:IviVersionDateTime") == "2024-03-06T23:30:15.123+00:00"
    assert _text(doc, "//ivi:SignatureDate") == "2024-03-06"


def test_missing_optional_build_values_leave_their_elements_out(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    sparse = build.model_copy(
        update={"actual_mass_kg": None, "colours": (), "tyres": (), "intended_country": None}
    )
    doc = _doc(render(sparse, approval, version_number=1, schema=schema))
    for name in ("ActualMass", "ColourTable", "TyreFittedProductionIndicator", "IntendedCountryRegistration"):
        assert _texts(doc, f"//ivi:{name}") == [], name
    assert _text(doc, "//ivi:MassGroup/ivi:MassInRunningOrder") == "1520"
    assert check(doc, schema) == []


def test_changed_approval_data_is_rendered_not_a_cached_template(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    render(build, approval, version_number=1, schema=schema)
    certificate = copy.deepcopy(approval.certificate)
    certificate["MaximumSpeed"] = "180"
    changed = approval.model_copy(update={"certificate": certificate})
    doc = _doc(render(build, changed, version_number=1, schema=schema))
    assert _text(doc, "//ivi:MaximumSpeed") == "180"


def test_invalid_result_raises_render_error_with_the_schema_messages(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    certificate: dict[str, Any] = copy.deepcopy(approval.certificate)
    certificate["MaximumSpeed"] = "fast"
    broken = approval.model_copy(update={"certificate": certificate})
    with pytest.raises(RenderError) as raised:
        render(build, broken, version_number=1, schema=schema)
    assert len(raised.value.messages) == 1
    assert raised.value.messages[0].startswith("CocDataGroup/MaximumSpeed: ")
    assert "'fast'" in raised.value.messages[0]


def test_unknown_element_in_the_approval_raises_render_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    broken = approval.model_copy(update={"certificate": {**approval.certificate, "TopSpeed": "180"}})
    with pytest.raises(RenderError, match="CocDataGroup/TopSpeed"):
        render(build, broken, version_number=1, schema=schema)


def test_approval_other_than_the_one_built_to_is_refused(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    other = approval.model_copy(update={"version": "OTHER"})
    with pytest.raises(RenderError, match="was built to"):
        render(build, other, version_number=1, schema=schema)


def test_a_sparse_record_leaves_no_trace_on_the_next_render(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    sparse = build.model_copy(
        update={"actual_mass_kg": None, "colours": (), "tyres": (), "intended_country": None}
    )
    one_colour = build.model_copy(update={"colours": ("3",)})
    full, empty, single = (
        render(b, approval, version_number=1, schema=schema) for b in (build, sparse, one_colour)
    )
    assert render(build, approval, version_number=1, schema=schema) == full
    assert render(sparse, approval, version_number=1, schema=schema) == empty
    assert _texts(_doc(render(one_colour, approval, version_number=1, schema=schema)), "//ivi:Colour") == [
        "3"
    ]
    assert single != full


def test_a_failed_render_leaves_no_trace_on_the_next(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    sparse = build.model_copy(update={"actual_mass_kg": None, "colours": ()})
    expected = render(build, approval, version_number=1, schema=schema)
    with pytest.raises(RenderError, match="IviVersionNumber"):
        render(sparse, approval, version_number=100, schema=schema)  # IviVersionNumber is Integer2
    assert render(build, approval, version_number=1, schema=schema) == expected


def test_renders_in_parallel_threads_match_renders_one_by_one(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    builds = [
        build.model_copy(update={"vin": f"JTAM1C0MPTEST{n:04d}", "colours": ("1",) * (n % 3)})
        for n in range(40)
    ]
    expected = [render(b, approval, version_number=1, schema=schema) for b in builds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(5):
            results = list(pool.map(lambda b: render(b, approval, version_number=1, schema=schema), builds))
            assert results == expected
