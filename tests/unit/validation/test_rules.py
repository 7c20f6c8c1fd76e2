"""Each validation rule: the finding it gives, with its owner, and silence on a clean record."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from devkit.ivi_import import import_document
from services.validation.policy import CheckDigitMode, RulePolicy
from services.validation.rules import FINDINGS_MAX, ApprovalTable, base_category, capped, check, check_digit
from shared.contracts import Approval, BuildRecord, Finding, FittedTyre, Owner, Severity
from shared.ivi import IviSchema

pytestmark = pytest.mark.unit
TODAY = dt.date(2026, 11, 26)


@pytest.fixture(scope="module")
def schema(xsd_path: Path) -> IviSchema:
    return IviSchema.load(xsd_path)


@pytest.fixture(scope="module")
def specimen(specimen_bytes: bytes, schema: IviSchema) -> tuple[Approval, BuildRecord]:
    return import_document(specimen_bytes, schema)


@pytest.fixture
def approval(specimen: tuple[Approval, BuildRecord]) -> Approval:
    return specimen[0]


@pytest.fixture
def build(specimen: tuple[Approval, BuildRecord]) -> BuildRecord:
    return specimen[1]


def findings_for(
    build: BuildRecord,
    approvals: list[Approval],
    schema: IviSchema,
    settings: RulePolicy | None = None,
) -> list[Finding]:
    table = ApprovalTable.of(schema, approvals)
    return check(build, table, settings or RulePolicy(), TODAY)


def codes(findings: list[Finding]) -> set[tuple[str, Owner, Severity]]:
    return {(f.code, f.owner, f.severity) for f in findings}


def with_certificate(approval: Approval, change: Any) -> Approval:
    tree = copy.deepcopy(approval.certificate)
    change(tree)
    return approval.model_copy(update={"certificate": tree})


def test_specimen_build_has_no_findings(build: BuildRecord, approval: Approval, schema: IviSchema) -> None:
    assert findings_for(build, [approval], schema) == []


def test_vin_of_sixteen_characters_is_an_error_for_production(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    short = build.model_copy(update={"vin": build.vin[:16]})
    assert ("VIN_LENGTH", Owner.PRODUCTION, Severity.ERROR) in codes(findings_for(short, [approval], schema))


@pytest.mark.parametrize("letter", ["I", "O", "Q"])
def test_vin_with_letter_i_o_or_q_is_an_error(
    letter: str, build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    bad = build.model_copy(update={"vin": build.vin[:-1] + letter})
    found = findings_for(bad, [approval], schema)
    assert ("VIN_CHARACTERS", Owner.PRODUCTION, Severity.ERROR) in codes(found)
    assert letter in next(f.message for f in found if f.code == "VIN_CHARACTERS")


def test_check_digit_follows_iso_3779() -> None:
    # The worked example of 49 CFR 565 / ISO 3779 literature: check digit X.
    assert check_digit("1M8GDM9AXKP042788") == "X"
    assert check_digit("11111111111111111") == "1"


def test_check_digit_rule_is_off_by_default_and_warns_or_blocks_as_set(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    vin = "JTAM1C0M" + "0" + "TEST0010"
    wrong = vin[:8] + ("1" if check_digit(vin) != "1" else "2") + vin[9:]
    wrong_build = build.model_copy(update={"vin": wrong})
    assert "VIN_CHECK_DIGIT" not in {f.code for f in findings_for(wrong_build, [approval], schema)}
    warn = RulePolicy(check_digit=CheckDigitMode.WARN)
    assert ("VIN_CHECK_DIGIT", Owner.PRODUCTION, Severity.WARNING) in codes(
        findings_for(wrong_build, [approval], schema, warn)
    )
    per_wmi = RulePolicy(check_digit_by_wmi={"JTA": CheckDigitMode.ERROR})
    assert ("VIN_CHECK_DIGIT", Owner.PRODUCTION, Severity.ERROR) in codes(
        findings_for(wrong_build, [approval], schema, per_wmi)
    )
    right = build.model_copy(update={"vin": vin[:8] + check_digit(vin) + vin[9:]})
    assert findings_for(right, [approval], schema, per_wmi) == []


def test_vin_of_another_manufacturer_is_an_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    foreign = build.model_copy(update={"vin": "WVW" + build.vin[3:]})
    found = findings_for(foreign, [approval], schema)
    assert ("VIN_WMI_FOREIGN", Owner.PRODUCTION, Severity.ERROR) in codes(found)


def test_unknown_approval_and_unknown_version_are_errors_for_type_approval(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    other_version = build.model_copy(
        update={"approval": build.approval.model_copy(update={"version": "NOPE"})}
    )
    found = findings_for(other_version, [approval], schema)
    assert codes(found) == {("APPROVAL_UNKNOWN", Owner.TYPE_APPROVAL, Severity.ERROR)}
    assert "version NOPE" in found[0].message
    other_number = build.model_copy(
        update={"approval": build.approval.model_copy(update={"number": "e1*2018/858*99999*00"})}
    )
    assert "is unknown" in findings_for(other_number, [approval], schema)[0].message


def test_vehicle_made_before_the_approval_was_issued_is_an_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    early = build.model_copy(update={"manufactured_on": approval.issue_date - dt.timedelta(days=1)})
    assert ("MANUFACTURED_BEFORE_APPROVAL", Owner.PRODUCTION, Severity.ERROR) in codes(
        findings_for(early, [approval], schema)
    )


def test_vehicle_made_in_the_future_is_an_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    future = build.model_copy(update={"manufactured_on": TODAY + dt.timedelta(days=1)})
    assert ("MANUFACTURED_IN_FUTURE", Owner.PRODUCTION, Severity.ERROR) in codes(
        findings_for(future, [approval], schema)
    )


def test_missing_actual_mass_is_an_error(build: BuildRecord, approval: Approval, schema: IviSchema) -> None:
    missing = build.model_copy(update={"actual_mass_kg": None})
    assert codes(findings_for(missing, [approval], schema)) == {
        ("ACTUAL_MASS_MISSING", Owner.PRODUCTION, Severity.ERROR)
    }


@pytest.mark.parametrize("delta", [-1, +1])
def test_actual_mass_outside_the_approved_range_is_an_error(
    delta: int, build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    assert approval.actual_mass_min_kg is not None and approval.actual_mass_max_kg is not None
    edge = approval.actual_mass_min_kg if delta < 0 else approval.actual_mass_max_kg
    inside = build.model_copy(update={"actual_mass_kg": edge})
    assert findings_for(inside, [approval], schema) == []
    outside = build.model_copy(update={"actual_mass_kg": edge + delta})
    assert codes(findings_for(outside, [approval], schema)) == {
        ("ACTUAL_MASS_OUT_OF_RANGE", Owner.PRODUCTION, Severity.ERROR)
    }


def test_approval_without_mass_range_is_a_type_approval_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    no_range = approval.model_copy(update={"actual_mass_max_kg": None})
    assert ("APPROVAL_MASS_RANGE_MISSING", Owner.TYPE_APPROVAL, Severity.ERROR) in codes(
        findings_for(build, [no_range], schema)
    )


def test_tyre_option_not_approved_for_the_axle_is_an_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    tyres = (FittedTyre(axle=1, option=9), *[t for t in build.tyres if t.axle != 1])
    found = findings_for(build.model_copy(update={"tyres": tyres}), [approval], schema)
    assert codes(found) == {("TYRE_NOT_APPROVED", Owner.PRODUCTION, Severity.ERROR)}
    assert "AxleGroup[1]" in found[0].path


def test_axle_without_fitted_tyre_is_an_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    tyres = tuple(t for t in build.tyres if t.axle != 2)
    assert codes(findings_for(build.model_copy(update={"tyres": tyres}), [approval], schema)) == {
        ("TYRE_MISSING", Owner.PRODUCTION, Severity.ERROR)
    }


def test_missing_colour_is_an_error_for_an_m1(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    assert codes(findings_for(build.model_copy(update={"colours": ()}), [approval], schema)) == {
        ("COLOUR_MISSING", Owner.PRODUCTION, Severity.ERROR)
    }


def test_colour_code_outside_the_ivi_list_is_an_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    assert ("COLOUR_INVALID", Owner.PRODUCTION, Severity.ERROR) in codes(
        findings_for(build.model_copy(update={"colours": ("11",)}), [approval], schema)
    )


def test_colour_on_a_category_without_the_colour_item_is_an_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    bus = approval.model_copy(update={"category": "M2"})
    assert ("COLOUR_NOT_IN_MODEL", Owner.PRODUCTION, Severity.ERROR) in codes(
        findings_for(build, [bus], schema)
    )


def test_master_data_without_a_required_group_is_a_type_approval_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    no_make = with_certificate(approval, lambda tree: tree.pop("MakeTable"))
    found = findings_for(build, [no_make], schema)
    assert ("MASTER_DATA_GROUP_MISSING", Owner.TYPE_APPROVAL, Severity.ERROR) in codes(found)
    assert "CocDataGroup/MakeTable" in {f.path for f in found}


def test_master_data_breaking_the_schema_is_a_type_approval_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    def break_it(tree: dict[str, Any]) -> None:
        tree["StageOfCompletion"] = "Z"  # not in StageOfCompletionCode
        tree["NoSuchElement"] = "1"

    found = findings_for(build, [with_certificate(approval, break_it)], schema)
    paths = {f.path for f in found if f.code == "MASTER_DATA_INVALID"}
    assert any("StageOfCompletion" in p for p in paths)
    assert any("NoSuchElement" in p for p in paths)


def test_missing_signer_is_a_compliance_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    def drop_signer(tree: dict[str, Any]) -> None:
        group = tree["SigningAuthorityTable"]["SigningAuthorityGroup"]
        (group[0] if isinstance(group, list) else group).pop("SignerName")

    found = findings_for(build, [with_certificate(approval, drop_signer)], schema)
    assert ("SIGNING_AUTHORITY_MISSING", Owner.COMPLIANCE, Severity.ERROR) in codes(found)


def test_pure_electric_indicator_must_match_the_energy_sources(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    def claim_electric(tree: dict[str, Any]) -> None:
        tree["PureElectricVehicleIndicator"] = "Y"  # the specimen is a petrol hybrid

    found = findings_for(build, [with_certificate(approval, claim_electric)], schema)
    assert ("INDICATOR_INCONSISTENT", Owner.TYPE_APPROVAL, Severity.ERROR) in codes(found)
    missing = with_certificate(approval, lambda tree: tree.pop("PureElectricVehicleIndicator"))
    assert ("INDICATOR_MISSING", Owner.TYPE_APPROVAL, Severity.ERROR) in codes(
        findings_for(build, [missing], schema)
    )


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        # Released before manufacture without a signature date: the certificate would be signed then.
        (
            {"released_at": dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "signature_date": None},
            "SIGNATURE_DATE_BEFORE_MANUFACTURE",
        ),
        (
            {"released_at": _at(dt.date(2024, 1, 1)), "signature_date": None},
            "SIGNATURE_DATE_BEFORE_MANUFACTURE",
        ),
        ({"released_at": _at(dt.date(2031, 1, 1))}, "RELEASED_IN_FUTURE"),
        ({"signature_date": dt.date(2024, 1, 31)}, "SIGNATURE_DATE_BEFORE_MANUFACTURE"),
        ({"signature_date": TODAY + dt.timedelta(days=2)}, "SIGNATURE_DATE_IN_FUTURE"),
        ({"manufactured_on": dt.date(1901, 1, 1)}, "MANUFACTURE_DATE_IMPLAUSIBLE"),
    ],
)
def test_dates_outside_a_plausible_window_are_errors_for_production(
    build: BuildRecord, approval: Approval, schema: IviSchema, change: dict[str, Any], code: str
) -> None:
    # The specimen vehicle was made on 2024-02-01 and released that day.
    found = codes(findings_for(build.model_copy(update=change), [approval], schema))
    assert (code, Owner.PRODUCTION, Severity.ERROR) in found


def test_a_release_time_before_manufacture_with_a_later_signature_date_is_only_a_warning(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    # As the official IVI 2.0 examples: IviVersionDateTime 2024-02-01, made and signed 2024-04-08.
    made_later = build.model_copy(
        update={"manufactured_on": dt.date(2024, 4, 8), "signature_date": dt.date(2024, 4, 8)}
    )
    found = findings_for(made_later, [approval], schema)
    assert codes(found) == {("RELEASED_BEFORE_MANUFACTURE", Owner.PRODUCTION, Severity.WARNING)}
    unsigned = made_later.model_copy(update={"signature_date": None})
    assert ("SIGNATURE_DATE_BEFORE_MANUFACTURE", Owner.PRODUCTION, Severity.ERROR) in codes(
        findings_for(unsigned, [approval], schema)
    )


def test_a_signature_date_after_release_and_up_to_today_is_fine(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    later = build.model_copy(update={"signature_date": dt.date(2024, 2, 5)})
    assert findings_for(later, [approval], schema) == []
    tomorrow = build.model_copy(update={"released_at": _at(TODAY + dt.timedelta(days=1))})
    assert findings_for(tomorrow, [approval], schema) == []  # a clock a day ahead is tolerated


def test_an_intended_country_the_schema_does_not_know_is_a_short_error(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    found = findings_for(build.model_copy(update={"intended_country": "XX"}), [approval], schema)
    (country,) = [f for f in found if f.code == "COUNTRY_UNKNOWN"]
    assert country.path == "Header/IntendedCountryRegistration" and country.owner is Owner.PRODUCTION
    assert "'XX'" in country.message and len(country.message) < 120
    assert findings_for(build.model_copy(update={"intended_country": "D"}), [approval], schema) == []


def test_a_colour_given_twice_is_an_error_and_is_named_once(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    twice = build.model_copy(update={"colours": ("2", "5", "2", "2")})
    found = [f for f in findings_for(twice, [approval], schema) if f.code.startswith("COLOUR")]
    assert [(f.code, f.severity) for f in found] == [("COLOUR_REPEATED", Severity.ERROR)]
    assert "2 is given more than once" in found[0].message


@pytest.mark.parametrize(
    ("category", "without", "with_one"),
    [
        ("M1", {"COLOUR_MISSING"}, set()),
        ("N1", {"COLOUR_MISSING"}, set()),
        ("N2", set(), set()),  # the official N2 specimen has no ColourTable
        ("N3", set(), set()),
        ("M2", set(), {"COLOUR_NOT_IN_MODEL"}),
        ("O3", set(), {"COLOUR_NOT_IN_MODEL"}),
        # Sub-categories the schema names have the CoC model of their base category.
        ("M1G", {"COLOUR_MISSING"}, set()),
        ("N1GS", {"COLOUR_MISSING"}, set()),
        ("N3G", set(), set()),
        ("O2S", set(), {"COLOUR_NOT_IN_MODEL"}),
        ("L3e-A1", set(), {"COLOUR_NOT_IN_MODEL"}),
        ("T1a", set(), {"COLOUR_NOT_IN_MODEL"}),
    ],
)
def test_the_colour_item_follows_the_category_table(
    build: BuildRecord,
    approval: Approval,
    schema: IviSchema,
    category: str,
    without: set[str],
    with_one: set[str],
) -> None:
    of_category = approval.model_copy(update={"category": category})

    def colour_codes(colours: tuple[str, ...]) -> set[str]:
        found = findings_for(build.model_copy(update={"colours": colours}), [of_category], schema)
        return {f.code for f in found if f.code.startswith("COLOUR")}

    assert colour_codes(()) == without
    assert colour_codes(("2",)) == with_one


def test_an_approval_with_thousands_of_bad_items_blocks_its_builds_with_a_bounded_list_of_findings(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    bad = {"RemarkSubjectDescription": "XXXXX", "RemarkSubjectLanguage": "zz", "Remark": "R"}
    broken = with_certificate(approval, lambda tree: tree.update(RemarkTable={"RemarkGroup": [bad] * 4900}))
    table = ApprovalTable.of(schema, [broken])
    found = check(build, table, RulePolicy(), TODAY)
    assert len(table.master_findings[broken.key]) > 4900  # what there is to say
    assert len(found) == FINDINGS_MAX
    *listed, more = found
    assert {f.code for f in listed} == {"MASTER_DATA_INVALID"}
    assert (more.code, more.severity, more.owner) == ("MORE_FINDINGS", Severity.ERROR, Owner.TYPE_APPROVAL)
    hidden = len(table.master_findings[broken.key]) - (FINDINGS_MAX - 1)
    assert more.message.startswith(f"{hidden} more findings not listed (MASTER_DATA_INVALID {hidden})")
    assert sum(len(f.model_dump_json()) for f in found) < 100_000  # fits one message with room to spare


def test_findings_cut_to_the_limit_keep_every_error_before_warnings_and_count_the_rest() -> None:
    def one(code: str, severity: Severity) -> Finding:
        return Finding(code=code, path="p", message="m", severity=severity, owner=Owner.PRODUCTION)

    findings = [one("W", Severity.WARNING)] * 8 + [one("E", Severity.ERROR)] * 2
    assert capped(findings[:5], limit=5) == findings[:5]
    cut = capped(findings, limit=5)
    assert [f.code for f in cut] == ["E", "E", "W", "W", "MORE_FINDINGS"]
    assert (cut[-1].severity, cut[-1].message) == (
        Severity.WARNING,
        "6 more findings not listed (W 6); correct the ones above first",
    )


@pytest.mark.parametrize(
    ("code", "base"),
    [
        ("M1", "M1"),
        ("M1GS", "M1"),
        ("M3S", "M3"),
        ("N2G", "N2"),
        ("O4S", "O"),
        ("L7e-CU", "L"),
        ("T4.2b", "T"),
        ("C1a", "T"),
        ("R3b", "T"),
        ("S2a", "T"),
    ],
)
def test_each_schema_category_code_has_the_coc_model_of_its_base_category(code: str, base: str) -> None:
    assert base_category(code) == base


def test_an_off_road_m1_without_the_pure_electric_indicator_is_a_finding(
    build: BuildRecord, approval: Approval, schema: IviSchema
) -> None:
    certificate = {k: v for k, v in approval.certificate.items() if k != "PureElectricVehicleIndicator"}
    off_road = approval.model_copy(update={"category": "M1G", "certificate": certificate})
    assert "INDICATOR_MISSING" in {f.code for f in findings_for(build, [off_road], schema)}


CATEGORY_ITEM_CODES = (
    "COLOUR",
    "INDICATOR",
    "ENERGY_CONVERTOR",
    "COUPLING",
    "COUPLING_PARTS",
    "COUPLING_CAN_BE_FITTED",
    "VERTICAL_MASS",
    "VERTICAL_MASS_COUPLING",
)
TABLE_ITEMS = (
    "PureElectricVehicleIndicator",
    "EnergyConvertorTable",
    "MechanicalCouplingTable",
    "MechanicalCouplingCanBeFittedTable",
)
VERTICAL_MASS = "MaximumStaticVerticalMassCouplingPointTable"
FITTED_WITH_PARTS = {
    "MechanicalCouplingGroup": [
        {"MechanicalCouplingNumber": 1},
        {"MechanicalCouplingNumber": 2, "MechanicalCouplingPartsTable": {"MechanicalCouplingPartsGroup": {}}},
    ]
}
VERTICAL_MASS_OF_A_COUPLING = {
    "MaximumStaticVerticalMassCouplingPointGroup": [
        {"TechnicallyPermissibleMaximumStaticVerticalMassCouplingPoint": 75},
        {
            "MechanicalCouplingNumberVerticalMass": 1,
            "TechnicallyPermissibleMaximumStaticVerticalMassCouplingPoint": 75,
        },
    ]
}
M1_REFUSES = {
    "COUPLING_NOT_IN_MODEL",
    "COUPLING_PARTS_NOT_IN_MODEL",
    "COUPLING_CAN_BE_FITTED_NOT_IN_MODEL",
    "VERTICAL_MASS_COUPLING_NOT_IN_MODEL",
}


def category_item_codes(
    build: BuildRecord,
    approval: Approval,
    schema: IviSchema,
    category: str,
    *,
    with_items: bool,
    stage: str = "I",
) -> set[str]:
    """The category-item findings of an approval of ``category`` without, or with, every such item."""
    tree = {k: v for k, v in approval.certificate.items() if k not in TABLE_ITEMS}
    masses = {k: v for k, v in tree.get("MassGroup", {}).items() if k != VERTICAL_MASS}
    tree |= {"StageOfCompletion": stage, "MassGroup": masses}
    if with_items:
        tree |= {"MechanicalCouplingTable": FITTED_WITH_PARTS, "MechanicalCouplingCanBeFittedTable": {}}
        tree |= {k: approval.certificate[k] for k in ("PureElectricVehicleIndicator", "EnergyConvertorTable")}
        tree["MassGroup"] = masses | {VERTICAL_MASS: VERTICAL_MASS_OF_A_COUPLING}
    of_category = approval.model_copy(update={"category": category, "certificate": tree})
    vehicle = build.model_copy(update={"colours": ("2",) if with_items else ()})
    found = findings_for(vehicle, [of_category], schema)
    return {f.code for f in found if f.code.rsplit("_", 1)[0].removesuffix("_NOT_IN") in CATEGORY_ITEM_CODES}


@pytest.mark.parametrize(
    ("category", "missing_when_absent", "refused_when_present"),
    [
        ("M1", {"COLOUR_MISSING", "INDICATOR_MISSING", "ENERGY_CONVERTOR_MISSING"}, M1_REFUSES),
        ("M2", {"INDICATOR_MISSING", "ENERGY_CONVERTOR_MISSING"}, {"COLOUR_NOT_IN_MODEL"}),
        ("M3S", {"INDICATOR_MISSING", "ENERGY_CONVERTOR_MISSING"}, {"COLOUR_NOT_IN_MODEL"}),
        ("N1", {"COLOUR_MISSING", "INDICATOR_MISSING", "ENERGY_CONVERTOR_MISSING"}, set()),
        ("N2", {"INDICATOR_MISSING", "ENERGY_CONVERTOR_MISSING"}, set()),
        ("N3G", {"INDICATOR_MISSING", "ENERGY_CONVERTOR_MISSING"}, set()),
        ("O4", set(), {"COLOUR_NOT_IN_MODEL", "INDICATOR_NOT_IN_MODEL", "ENERGY_CONVERTOR_NOT_IN_MODEL"}),
        (
            "L3e-A1",
            {"ENERGY_CONVERTOR_MISSING"},
            {"COLOUR_NOT_IN_MODEL", "COUPLING_PARTS_NOT_IN_MODEL", "COUPLING_CAN_BE_FITTED_NOT_IN_MODEL"},
        ),
        (
            "T1a",
            {"ENERGY_CONVERTOR_MISSING"},
            {"COLOUR_NOT_IN_MODEL", "COUPLING_CAN_BE_FITTED_NOT_IN_MODEL", "VERTICAL_MASS_NOT_IN_MODEL"},
        ),
    ],
)
def test_each_category_carries_the_items_of_its_coc_model(
    build: BuildRecord,
    approval: Approval,
    schema: IviSchema,
    category: str,
    missing_when_absent: set[str],
    refused_when_present: set[str],
) -> None:
    """Every category-dependent item absent, then every one present (an incomplete vehicle): its model's rules."""
    assert category_item_codes(build, approval, schema, category, with_items=False) == missing_when_absent
    assert category_item_codes(build, approval, schema, category, with_items=True) == refused_when_present


@pytest.mark.parametrize(("stage", "refused"), [("I", False), ("C", True), ("V", True)])
def test_couplings_that_can_be_fitted_later_are_stated_only_for_an_incomplete_vehicle(
    build: BuildRecord, approval: Approval, schema: IviSchema, stage: str, refused: bool
) -> None:
    codes = category_item_codes(build, approval, schema, "N3", with_items=True, stage=stage)
    assert ("COUPLING_CAN_BE_FITTED_NOT_IN_MODEL" in codes) is refused
    if refused:
        tree = approval.certificate | {"StageOfCompletion": stage, "MechanicalCouplingCanBeFittedTable": {}}
        late = approval.model_copy(update={"category": "N3", "certificate": tree})
        (said,) = [
            f for f in findings_for(build, [late], schema) if f.code == "COUPLING_CAN_BE_FITTED_NOT_IN_MODEL"
        ]
        assert f"stage of completion {stage}" in said.message


@pytest.mark.parametrize(
    ("category", "allowed"), [("M1", False), ("N3", False), ("O2", False), ("L1e-B", True), ("T2b", True)]
)
def test_version_n_a_is_for_tractors_and_l_category_only(
    build: BuildRecord, approval: Approval, schema: IviSchema, category: str, allowed: bool
) -> None:
    na = approval.model_copy(update={"category": category, "version": "N/A"})
    vehicle = build.model_copy(update={"approval": build.approval.model_copy(update={"version": "N/A"})})
    found = {f.code for f in findings_for(vehicle, [na], schema)}
    assert ("VERSION_NOT_APPLICABLE" in found) is not allowed
