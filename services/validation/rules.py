"""The validation rules: pure functions from (build record, approval table, policy) to findings.

Each rule returns the findings it has about one record; ``check`` runs them all.
Findings about the approval's own data (completeness against the schema and
IVI's filling rules) depend on the approval alone, so the approval table works
them out once per approval and every record built to it reuses them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from services.validation.policy import CheckDigitMode, RulePolicy
from shared.contracts import Approval, BuildRecord, Finding, Owner, Severity
from shared.ivi import IviSchema
from shared.vin import ALPHABET, check_digit

ROOT = "CocDataGroup"
VIN_PATH = f"{ROOT}/VehicleIdentificationNumber"


# Groups IVI 2.0 requires in every certificate (change overview, "Mandatory fields in IVI 2.0").
ALWAYS_REQUIRED_GROUPS = (
    "SigningAuthorityTable",
    "MakeTable",
    "ManufacturerTable",
    "GeneralConstructionGroup",
    "MassGroup",
    "DimensionGroup",
)
SIGNER_FIELDS = ("SignerName", "SignerPosition", "SignatureLocation")
# The schema's category codes (VehicleCategoryCode) name sub-categories: off-road G, special
# purpose S, both GS (M1G, N2GS...), trailers O1-O4 (O1S...), L1e-A..., T, C, R, S for
# agricultural and forestry vehicles. Each has the CoC model of its base category
# (Regulation 2018/858 Annex I Part A; 168/2013 for L; 167/2013 for T, C, R, S).
AGRICULTURAL = frozenset("TCRS")


def base_category(code: str) -> str:
    """The CoC model's category of a VehicleCategory code: M1G → M1, N3GS → N3, O2S → O, L3e-A1 → L, T2a → T."""
    if code[:1] in "MN" and len(code) >= 2 and code[1].isdigit():
        return code[:2]
    if code[:1] == "O":
        return "O"
    if code[:1] == "L":
        return "L"
    if code[:1] in AGRICULTURAL:
        return "T"
    return code


Presence = Literal["must", "may", "must not"]


@dataclass(frozen=True)
class CategoryItem:
    """One item that a category's CoC model has or has not, as IVI's filling rules state it.

    ``presence`` names the categories whose rule a source settles; every other
    category takes ``otherwise``. Where no source in the kit settles a category,
    the table says "may": the item is neither required nor refused there until
    the IVI checking module (ICM) says otherwise.
    """

    item: str  # where it is, from CocDataGroup: a child, or a path into its groups
    presence: Mapping[str, Presence]
    otherwise: Presence
    codes: str  # the findings' prefix: <codes>_MISSING, <codes>_NOT_IN_MODEL
    source: str
    not_at_stages: frozenset[str] = frozenset()  # StageOfCompletion codes at which it is refused

    def of(self, category: str, stage: str | None = None) -> Presence:
        if stage in self.not_at_stages:
            return "must not"
        return self.presence.get(base_category(category), self.otherwise)

    def found_in(self, certificate: Mapping[str, Any]) -> bool:
        """Whether the certificate data has the item (in any group of a table on its path)."""
        level: list[Any] = [certificate]
        for name in self.item.split("/"):
            level = [
                inner for node in level if isinstance(node, Mapping) for inner in _as_list(node.get(name))
            ]
        return bool(level)


# Which category-dependent items a certificate carries, per CoC model (the base category of
# ``base_category``). The one table the rules read; a test per category holds it. Guidelines
# 1.4 and 1.13-1.14: an item of the category's model is present, an item outside it is an error.
# The eCoC IVI set-up manual (version 1.5, 30-03-2026) settles the energy convertors and the
# coupling tables per category.
FITTED_TYRES = "AxleTable/AxleGroup/TyreAxleTable/TyreAxleGroup/TyreFittedProductionIndicator"
CATEGORY_ITEMS: tuple[CategoryItem, ...] = (
    CategoryItem(
        "DateManufactureVehicle",  # the build's own value
        # The official L1e and L5e examples (168/2013) state none; every other category keeps
        # requiring it as the pipeline always has (the official M1 and N2 specimens state it).
        {"L": "may"},
        otherwise="must",
        codes="MANUFACTURE_DATE",
        source="official IVI 2.0 examples: L1e and L5e without DateManufactureVehicle, M1 and N2 with it",
    ),
    CategoryItem(
        FITTED_TYRES,  # the build's tyres
        # The official L1e and L5e examples mark no tyre as fitted; the M1 and N2 specimens mark one
        # option per axle, as the set-up manual describes ("Indicates tyre is fitted during production").
        {"L": "may"},
        otherwise="must",
        codes="TYRE",
        source="set-up manual 1.5 p. 22; official IVI 2.0 examples: L1e and L5e without the indicator",
    ),
    CategoryItem(
        "ColourTable",
        # M1 and N1 carry "Colour of vehicle" (the official M1 specimen; their CoC models). The
        # official N2 specimen has none, and no source in the kit settles N2/N3 either way.
        {"M1": "must", "N1": "must", "N2": "may", "N3": "may"},
        otherwise="must not",
        codes="COLOUR",
        source='guidelines 1.4 ("do not enter Colour for the vehicle category M2") and change overview '
        '"ICM" (such a file is rejected); official M1 and N2 specimens',
    ),
    CategoryItem(
        "PureElectricVehicleIndicator",
        # Present with Y or N for M and N; a trailer has no energy source to state. L and T:
        # not settled by the kit's sources.
        {
            "M1": "must",
            "M2": "must",
            "M3": "must",
            "N1": "must",
            "N2": "must",
            "N3": "must",
            "L": "may",
            "T": "may",
        },
        otherwise="must not",
        codes="INDICATOR",
        source='guidelines 1.13-1.14; change overview "ICM"',
    ),
    CategoryItem(
        "EnergyConvertorTable",
        {"O": "must not"},  # a trailer has no energy convertor
        otherwise="must",
        codes="ENERGY_CONVERTOR",
        source='set-up manual 1.5 p. 21: "For all vehicles M,N,L,T,C an '
        'EnergyConvertorCodeMarkedOnEnergyConvertor must be present"',
    ),
    CategoryItem(
        "MechanicalCouplingTable",  # the coupling devices fitted at production
        {"M1": "must not"},
        otherwise="may",
        codes="COUPLING",
        source='set-up manual 1.5 p. 11: "Add for vehicle categories: M2, M3, N, O, L, T, C, R, S. '
        'For M1 the Table is Forbidden"',
    ),
    CategoryItem(
        "MechanicalCouplingTable/MechanicalCouplingGroup/MechanicalCouplingPartsTable",
        {"M1": "must not", "L": "must not"},
        otherwise="may",
        codes="COUPLING_PARTS",
        source='set-up manual 1.5 p. 11: "Add for vehicle categories: M2, M3, N, O, T, C, R, S. '
        'For M1 and L the Table is Forbidden"',
    ),
    CategoryItem(
        "MechanicalCouplingCanBeFittedTable",  # devices allowed to be fitted later: incomplete vehicles
        {"M1": "must not", "L": "must not", "T": "must not"},
        otherwise="may",
        codes="COUPLING_CAN_BE_FITTED",
        source='set-up manual 1.5 p. 11: "For M1, L, T, C, R and S and StageOfCompletion C,V the '
        'Table is Forbidden"',
        not_at_stages=frozenset({"C", "V"}),
    ),
    CategoryItem(
        "MassGroup/MaximumStaticVerticalMassCouplingPointTable",
        {"T": "must not"},
        otherwise="may",
        codes="VERTICAL_MASS",
        source='set-up manual 1.5 p. 10: "Add for vehicle categories: M, N, O, L, R, S. Table is '
        'forbidden for T, C"',
    ),
    CategoryItem(
        "MassGroup/MaximumStaticVerticalMassCouplingPointTable/MaximumStaticVerticalMassCouplingPointGroup"
        "/MechanicalCouplingNumberVerticalMass",
        {"M1": "must not"},
        otherwise="may",
        codes="VERTICAL_MASS_COUPLING",
        source='set-up manual 1.5 p. 10: "For M1 a MechanicalCouplingNumberVerticalMass is Forbidden"',
    ),
)
CATEGORY_ITEM = {row.item: row for row in CATEGORY_ITEMS}
# The build's own values among them, checked with the build rather than with the approval.
PER_VEHICLE_ITEMS = frozenset({"DateManufactureVehicle", "ColourTable", FITTED_TYRES})
# Version "N/A" is for tractors and L-category vehicles only (change overview; 167/2013, 168/2013).
VERSION_NA_CATEGORIES = frozenset({"L", "T"})
ELECTRICITY = "95"
COLOUR_CODES = frozenset(str(n) for n in range(1, 11))


MESSAGE_MAX = 500  # a finding quotes a short excerpt; the value itself stays in the record
# Findings kept per record, the last saying how many more were found: a record's findings travel in
# one message (status, DLQ), and an approval with thousands of bad items must not outgrow it.
FINDINGS_MAX = 100


def finding(code: str, path: str, message: str, owner: Owner, severity: Severity = Severity.ERROR) -> Finding:
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    return Finding(code=code, path=path[:MESSAGE_MAX], message=message, severity=severity, owner=owner)


# --- the approval table ---------------------------------------------------------------------


class KnownApprovals(Protocol):
    """What the rules read of the approvals a validator knows: ``ApprovalTable`` is one."""

    @property
    def schema(self) -> IviSchema: ...

    @property
    def numbers(self) -> Collection[str]: ...

    @property
    def master_findings(self) -> Mapping[str, tuple[Finding, ...]]: ...

    def get(self, key: str) -> Approval | None: ...


@dataclass
class ApprovalTable:
    """The approvals a validator knows, with the findings about each one's own data."""

    schema: IviSchema
    approvals: dict[str, Approval] = field(default_factory=dict)
    master_findings: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    numbers: set[str] = field(default_factory=set)

    def add(self, approval: Approval) -> None:
        """Add or replace an approval (the compacted topic sends the newest last)."""
        self.approvals[approval.key] = approval
        self.master_findings[approval.key] = tuple(master_data_findings(approval, self.schema))
        self.numbers.add(approval.number)

    def get(self, key: str) -> Approval | None:
        return self.approvals.get(key)

    @classmethod
    def of(cls, schema: IviSchema, approvals: Iterable[Approval]) -> ApprovalTable:
        table = cls(schema)
        for approval in approvals:
            table.add(approval)
        return table


def master_data_findings(approval: Approval, schema: IviSchema) -> Iterator[Finding]:
    """What the approval's certificate data lacks or gets wrong; owned by type-approval."""
    tree = approval.certificate
    for problem in schema.check_tree(tree, at=ROOT):
        yield finding("MASTER_DATA_INVALID", problem.path, problem.message, Owner.TYPE_APPROVAL)
    for group in ALWAYS_REQUIRED_GROUPS:
        if group not in tree:
            yield finding(
                "MASTER_DATA_GROUP_MISSING",
                f"{ROOT}/{group}",
                f"{group} is required in every IVI 2.0 certificate; add it to approval "
                f"{approval.number} version {approval.version}",
                Owner.TYPE_APPROVAL,
            )
    yield from _signing_authority_findings(tree)
    yield from _category_item_findings(approval)
    yield from _electric_indicator_findings(approval)
    yield from _version_findings(approval)
    yield from _multistage_findings(approval)
    if approval.actual_mass_min_kg is None or approval.actual_mass_max_kg is None:
        yield finding(
            "APPROVAL_MASS_RANGE_MISSING",
            f"{ROOT}/MassGroup/ActualMass",
            f"approval {approval.number} version {approval.version} has no approved actual-mass "
            "range (actual_mass_min_kg and actual_mass_max_kg)",
            Owner.TYPE_APPROVAL,
        )


def _signing_authority_findings(tree: Mapping[str, Any]) -> Iterator[Finding]:
    """The signer's name, position and place must be known (change overview; set-up manual)."""
    path = f"{ROOT}/SigningAuthorityTable/SigningAuthorityGroup"
    groups = _as_list(tree.get("SigningAuthorityTable", {}).get("SigningAuthorityGroup"))
    if not groups:
        yield finding(
            "SIGNING_AUTHORITY_MISSING",
            path,
            "no signing authority: name the person who signs for the manufacturer or its EU "
            "representative (name, position, place)",
            Owner.COMPLIANCE,
        )
        return
    for name in SIGNER_FIELDS:
        if not groups[0].get(name):
            yield finding(
                "SIGNING_AUTHORITY_MISSING",
                f"{path}/{name}",
                f"the signing authority has no {name}",
                Owner.COMPLIANCE,
            )


def _category_item_findings(approval: Approval) -> Iterator[Finding]:
    """The approval's items against its category's CoC model (``CATEGORY_ITEMS``; colour is the build's)."""
    stage = approval.certificate.get("StageOfCompletion")
    for row in CATEGORY_ITEMS:
        if row.item in PER_VEHICLE_ITEMS:
            continue
        presence, present = row.of(approval.category, stage), row.found_in(approval.certificate)
        name = row.item.rsplit("/", 1)[-1]
        if presence == "must" and not present:
            yield finding(
                f"{row.codes}_MISSING",
                f"{ROOT}/{row.item}",
                f"a certificate of category {approval.category} states {name}; add it to approval "
                f"{approval.number} version {approval.version}",
                Owner.TYPE_APPROVAL,
            )
        elif presence == "must not" and present:
            refused_here = (
                f"a vehicle at stage of completion {stage}"
                if stage in row.not_at_stages
                else f"a certificate of category {approval.category}"
            )
            yield finding(
                f"{row.codes}_NOT_IN_MODEL",
                f"{ROOT}/{row.item}",
                f"{refused_here} has no {name} item; remove it from approval "
                f"{approval.number} version {approval.version}",
                Owner.TYPE_APPROVAL,
            )


def _multistage_findings(approval: Approval) -> Iterator[Finding]:
    """The ManufacturerTable's stages and the stage of completion (services.validation.multistage)."""
    from services.validation import multistage as stages  # imported here: it builds on finding() above

    yield from stages.master_findings(approval)


def _version_findings(approval: Approval) -> Iterator[Finding]:
    if approval.version == "N/A" and base_category(approval.category) not in VERSION_NA_CATEGORIES:
        yield finding(
            "VERSION_NOT_APPLICABLE",
            f"{ROOT}/Version",
            f"Version N/A is for tractors and L-category vehicles only; approval {approval.number} "
            f"({approval.category}) names its version",
            Owner.TYPE_APPROVAL,
        )


def _electric_indicator_findings(approval: Approval) -> Iterator[Finding]:
    """PureElectricVehicleIndicator, where stated, is Y only if every energy source is 95.

    (guidelines 1.13-1.14 and change overview "ICM"; whether it is stated: ``CATEGORY_ITEMS``)
    """
    path = f"{ROOT}/PureElectricVehicleIndicator"
    indicator = approval.certificate.get("PureElectricVehicleIndicator")
    if indicator is None:
        return
    sources = set(_energy_sources(approval.certificate))
    all_electric = bool(sources) and sources == {ELECTRICITY}
    if (indicator == "Y") != all_electric:
        yield finding(
            "INDICATOR_INCONSISTENT",
            path,
            f"PureElectricVehicleIndicator is {indicator} but the energy sources are "
            f"{', '.join(sorted(sources)) or 'none'}; it is Y only when every source is 95",
            Owner.TYPE_APPROVAL,
        )


def _energy_sources(tree: Mapping[str, Any]) -> Iterator[str]:
    convertors = _as_list(tree.get("EnergyConvertorTable", {}).get("EnergyConvertorGroup"))
    for convertor in convertors:
        for source in _as_list(convertor.get("EnergySourceTable", {}).get("EnergySourceGroup")):
            if "EnergySource" in source:
                yield str(source["EnergySource"])


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- rules about one build ------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a revision puts its vehicle: its vehicle group and its plant."""

    vehicle_group: str
    plant: str

    @classmethod
    def of(cls, build: BuildRecord) -> Placement:
        return cls(build.vehicle_group, build.plant)


@dataclass(frozen=True)
class Context:
    build: BuildRecord
    approval: Approval | None
    policy: RulePolicy
    today: dt.date
    schema: IviSchema | None = None
    # The previous revision's group and plant, where this revision changes them.
    moved_from: Placement | None = None


Rule = Callable[[Context], Iterable[Finding]]


def vin_format(ctx: Context) -> Iterator[Finding]:
    """ISO 3779: 17 characters from the VIN alphabet (no I, O or Q)."""
    vin = ctx.build.vin
    if len(vin) != 17:
        yield finding(
            "VIN_LENGTH", VIN_PATH, f"VIN {vin} has {len(vin)} characters; a VIN has 17", Owner.PRODUCTION
        )
    bad = sorted(set(vin) - ALPHABET)
    if bad:
        yield finding(
            "VIN_CHARACTERS",
            VIN_PATH,
            f"VIN {vin} contains {', '.join(bad)}; only digits and capital letters other than "
            "I, O and Q are allowed",
            Owner.PRODUCTION,
        )


def vin_check_digit(ctx: Context) -> Iterator[Finding]:
    """The position-9 check digit, enforced as the manufacturer's setting says."""
    vin = ctx.build.vin
    mode = ctx.policy.check_digit_mode(vin[:3])
    if mode is CheckDigitMode.OFF or len(vin) != 17 or set(vin) - ALPHABET:
        return
    expected = check_digit(vin)
    if vin[8] != expected:
        severity = Severity.ERROR if mode is CheckDigitMode.ERROR else Severity.WARNING
        yield finding(
            "VIN_CHECK_DIGIT",
            VIN_PATH,
            f"VIN {vin} has check digit {vin[8]}, expected {expected}",
            Owner.PRODUCTION,
            severity,
        )


def vin_manufacturer(ctx: Context) -> Iterator[Finding]:
    """The WMI (positions 1-3) must be one of the approval holder's."""
    if ctx.approval is None or not ctx.approval.wmis:
        return
    wmi = ctx.build.vin[:3]
    if wmi not in ctx.approval.wmis:
        yield finding(
            "VIN_WMI_FOREIGN",
            VIN_PATH,
            f"VIN {ctx.build.vin} starts with WMI {wmi}, which is not the manufacturer's "
            f"({', '.join(ctx.approval.wmis)})",
            Owner.PRODUCTION,
        )


def known_names(ctx: Context) -> Iterator[Finding]:
    """The vehicle group and the plant are the compliance lead's master data, never a silent new name.

    An unknown one blocks the record for compliance: the lead adds it (the
    workspace's rollout page, ``coc groups add``) and the record is decided
    again, or production corrects the build.
    """
    build, policy = ctx.build, ctx.policy
    if policy.known_groups is not None and build.vehicle_group not in policy.known_groups:
        yield finding(
            "GROUP_UNKNOWN",
            ROOT,
            f"vehicle group {build.vehicle_group!r} is not in the master data: the compliance lead adds it "
            "(rollout page or `coc groups add`), or production corrects the build",
            Owner.COMPLIANCE,
        )
    if policy.known_plants is not None and build.plant not in policy.known_plants:
        yield finding(
            "PLANT_UNKNOWN",
            ROOT,
            f"plant {build.plant!r} is not in the master data: the compliance lead adds it "
            "(rollout page or `coc groups add --plant`), or production corrects the build",
            Owner.COMPLIANCE,
        )


def moved(ctx: Context) -> Iterator[Finding]:
    """A revision that moves its vehicle to another group or plant waits for a reviewer, owned by compliance.

    A correction may rightly move a vehicle (a wrong line keyed), but it changes
    which group's release and counts the vehicle is under: a person confirms it.
    """
    before, build = ctx.moved_from, ctx.build
    if before is None:
        return
    if before.vehicle_group != build.vehicle_group:
        yield finding(
            "GROUP_CHANGED",
            ROOT,
            f"revision {build.revision} moves the vehicle from group {before.vehicle_group!r} to "
            f"{build.vehicle_group!r}: a reviewer confirms the move or rejects the record",
            Owner.COMPLIANCE,
            Severity.WARNING,
        )
    if before.plant != build.plant:
        yield finding(
            "PLANT_CHANGED",
            ROOT,
            f"revision {build.revision} says the vehicle was built at {build.plant!r}, the one before at "
            f"{before.plant!r}: a reviewer confirms it or rejects the record",
            Owner.COMPLIANCE,
            Severity.WARNING,
        )


def approval_exists(ctx: Context, numbers: Collection[str]) -> Iterator[Finding]:
    if ctx.approval is not None:
        return
    ref = ctx.build.approval
    if ref.number in numbers:
        message = (
            f"approval {ref.number} has no type {ref.type}, variant {ref.variant}, version "
            f"{ref.version}; add that version to the master data or correct the build"
        )
    else:
        message = f"approval {ref.number} is unknown; load its master data or correct the build"
    yield finding("APPROVAL_UNKNOWN", f"{ROOT}/TypeApprovalNumber", message, Owner.TYPE_APPROVAL)


def manufacture_date(ctx: Context) -> Iterator[Finding]:
    """Stated where the category's model has it; not before the approval's issue date (domain.md), not in the future."""
    made = ctx.build.manufactured_on
    path = f"{ROOT}/DateManufactureVehicle"
    if made is None:
        if (
            ctx.approval is not None
            and CATEGORY_ITEM["DateManufactureVehicle"].of(ctx.approval.category) == "must"
        ):
            yield finding(
                "MANUFACTURE_DATE_MISSING",
                path,
                "the build record has no date of manufacture (manufactured_on); a certificate of category "
                f"{ctx.approval.category} states it",
                Owner.PRODUCTION,
            )
        return
    if made > ctx.today:
        yield finding(
            "MANUFACTURED_IN_FUTURE", path, f"date of manufacture {made} is in the future", Owner.PRODUCTION
        )
    if ctx.approval is not None and made < ctx.approval.issue_date:
        yield finding(
            "MANUFACTURED_BEFORE_APPROVAL",
            path,
            f"date of manufacture {made} is before approval {ctx.approval.number} was issued "
            f"({ctx.approval.issue_date})",
            Owner.PRODUCTION,
        )


EARLIEST_MANUFACTURE = dt.date(1990, 1, 1)  # older is a typing error, not a vehicle getting a first CoC


def plausible_dates(ctx: Context) -> Iterator[Finding]:
    """Release time and signature date: not before manufacture, not in the future; manufacture not absurd.

    IviVersionDateTime is the release time (``released_at``); SignatureDate is the
    date the record is released for signing (``signature_date``, else the date of
    the release time). A clock a day ahead is tolerated (time zones).
    """
    build, latest = ctx.build, ctx.today + dt.timedelta(days=1)
    made = build.manufactured_on or dt.date.min  # none stated: only the future is checked
    if build.manufactured_on is not None and made < EARLIEST_MANUFACTURE:
        yield finding(
            "MANUFACTURE_DATE_IMPLAUSIBLE",
            f"{ROOT}/DateManufactureVehicle",
            f"date of manufacture {made} is before {EARLIEST_MANUFACTURE}; correct it",
            Owner.PRODUCTION,
        )
    header = "Header/IviVersionDateTime"
    if build.released_at is not None:
        released = build.released_at.date()
        if released < made:
            # A warning: the official IVI 2.0 examples state IviVersionDateTime 2024-02-01 for
            # vehicles made up to 2024-07-16, with the SignatureDate on or after the manufacture.
            yield finding(
                "RELEASED_BEFORE_MANUFACTURE",
                header,
                f"release time {build.released_at.isoformat()} is before the date of manufacture {made}; "
                "check it",
                Owner.PRODUCTION,
                Severity.WARNING,
            )
        if released > latest:
            yield finding(
                "RELEASED_IN_FUTURE",
                header,
                f"release time {build.released_at.isoformat()} is in the future",
                Owner.PRODUCTION,
            )
    # What the certificate will state: the record's own signature date, else its release date.
    stated = build.signature_date
    signed = stated or (build.released_at.date() if build.released_at is not None else None)
    path = f"{ROOT}/SigningAuthorityTable/SigningAuthorityGroup/SignatureDate"
    if signed is not None and signed < made:
        yield finding(
            "SIGNATURE_DATE_BEFORE_MANUFACTURE",
            path,
            f"signature date {signed}{'' if stated else ' (the date of the release time)'} is before the "
            f"date of manufacture {made}",
            Owner.PRODUCTION,
        )
    if stated is not None and stated > latest:
        yield finding(
            "SIGNATURE_DATE_IN_FUTURE", path, f"signature date {stated} is in the future", Owner.PRODUCTION
        )


def schema_values(ctx: Context) -> Iterator[Finding]:
    """The build's own coded values against what the schema enumerates, with a short message.

    The schema's error names the whole list; render would refuse the document with
    it. Finding it here keeps ``check`` and ``render`` in agreement and the message short.
    """
    country = ctx.build.intended_country
    if ctx.schema is None or not country:
        return
    path = "Header/IntendedCountryRegistration"
    kind = ctx.schema.simple_type(ctx.schema.declaration(path))
    if kind.enumeration and country not in kind.enumeration:
        yield finding(
            "COUNTRY_UNKNOWN",
            path,
            f"intended country {country[:20]!r} is not a country code of IVI 2.0 ({kind.name})",
            Owner.PRODUCTION,
        )


def actual_mass(ctx: Context) -> Iterator[Finding]:
    """Present and inside the approved range; outside is an error, not a warning (domain.md)."""
    path = f"{ROOT}/MassGroup/ActualMass"
    mass = ctx.build.actual_mass_kg
    if mass is None:
        yield finding(
            "ACTUAL_MASS_MISSING",
            path,
            "the build record has no actual mass (actual_mass_kg)",
            Owner.PRODUCTION,
        )
        return
    if ctx.approval is None:
        return
    low, high = ctx.approval.actual_mass_min_kg, ctx.approval.actual_mass_max_kg
    if low is None or high is None:
        return  # reported once per approval as APPROVAL_MASS_RANGE_MISSING
    if not low <= mass <= high:
        yield finding(
            "ACTUAL_MASS_OUT_OF_RANGE",
            path,
            f"actual mass {mass} kg is outside the approved range {low}-{high} kg",
            Owner.PRODUCTION,
        )


def fitted_tyres(ctx: Context) -> Iterator[Finding]:
    """Each axle's fitted tyre is one of the approved options of that axle."""
    if ctx.approval is None:
        return
    options = approved_tyre_options(ctx.approval.certificate)
    fitted = {tyre.axle: tyre.option for tyre in ctx.build.tyres}
    for axle, option in sorted(fitted.items()):
        path = f"{ROOT}/AxleTable/AxleGroup[{axle}]/TyreAxleTable"
        if option not in options.get(axle, ()):
            approved = ", ".join(map(str, sorted(options.get(axle, ())))) or "none"
            yield finding(
                "TYRE_NOT_APPROVED",
                path,
                f"tyre option {option} on axle {axle} is not approved (approved: {approved})",
                Owner.PRODUCTION,
            )
    if not fitted and CATEGORY_ITEM[FITTED_TYRES].of(ctx.approval.category) != "must":
        return  # a category whose certificate marks no fitted tyre
    for axle in sorted(set(options) - set(fitted)):
        yield finding(
            "TYRE_MISSING",
            f"{ROOT}/AxleTable/AxleGroup[{axle}]/TyreAxleTable",
            f"the build record does not say which tyre option is fitted on axle {axle}",
            Owner.PRODUCTION,
        )


def approved_tyre_options(tree: Mapping[str, Any]) -> dict[int, set[int]]:
    """Axle number → the approved TyreNumber options of that axle."""
    options: dict[int, set[int]] = {}
    for axle in _as_list(tree.get("AxleTable", {}).get("AxleGroup")):
        tyres = _as_list(axle.get("TyreAxleTable", {}).get("TyreAxleGroup"))
        numbers = {int(t["TyreNumber"]) for t in tyres if "TyreNumber" in t}
        if "AxleNumber" in axle and numbers:
            options[int(axle["AxleNumber"])] = numbers
    return options


def colours(ctx: Context) -> Iterator[Finding]:
    """Colour present where the category's CoC model has it, absent where it does not."""
    path = f"{ROOT}/ColourTable/ColourGroup/Colour"
    if ctx.approval is None:
        return
    presence = CATEGORY_ITEM["ColourTable"].of(ctx.approval.category)
    if presence == "must" and not ctx.build.colours:
        yield finding("COLOUR_MISSING", path, "the build record has no colour", Owner.PRODUCTION)
    if presence == "must not" and ctx.build.colours:
        yield finding(
            "COLOUR_NOT_IN_MODEL",
            path,
            f"a certificate of category {ctx.approval.category} has no colour item; remove the colour",
            Owner.PRODUCTION,
        )
    repeated = sorted({code for code in ctx.build.colours if ctx.build.colours.count(code) > 1})
    if repeated:
        yield finding(
            "COLOUR_REPEATED",
            path,
            f"colour code {', '.join(repeated)} is given more than once; each colour is listed once",
            Owner.PRODUCTION,
        )
    for code in dict.fromkeys(ctx.build.colours):
        if code not in COLOUR_CODES:
            yield finding(
                "COLOUR_INVALID",
                path,
                f"colour code {code!r} is not an IVI colour code (1-10)",
                Owner.PRODUCTION,
            )


def previous_stage(ctx: Context) -> Iterator[Finding]:
    """A later stage's build names its base vehicle's certificate, which fits (services.validation.multistage)."""
    from services.validation import multistage as stages  # imported here: it builds on finding() above

    yield from stages.build_findings(ctx.build, ctx.approval)


BUILD_RULES: tuple[Rule, ...] = (
    known_names,
    moved,
    vin_format,
    vin_check_digit,
    vin_manufacturer,
    manufacture_date,
    plausible_dates,
    schema_values,
    actual_mass,
    fitted_tyres,
    colours,
    previous_stage,
)


def check(
    build: BuildRecord,
    table: KnownApprovals,
    policy: RulePolicy,
    today: dt.date,
    moved_from: Placement | None = None,
) -> list[Finding]:
    """Every finding about one build record: its own, then its approval's; at most ``FINDINGS_MAX``.

    ``today`` is the plant's calendar date: the dates a build states are the plant's.
    ``moved_from``: the previous revision's group and plant, where this revision changes them.
    """
    approval = table.get(build.approval.key)
    ctx = Context(
        build=build, approval=approval, policy=policy, today=today, schema=table.schema, moved_from=moved_from
    )
    findings = list(approval_exists(ctx, table.numbers))
    for rule in BUILD_RULES:
        findings.extend(rule(ctx))
    if approval is not None:
        findings.extend(table.master_findings[approval.key])
    return capped(findings)


def capped(findings: list[Finding], limit: int = FINDINGS_MAX) -> list[Finding]:
    """At most ``limit`` findings: the first ones, errors before warnings, and one that counts the rest.

    A broken approval (thousands of invalid items) then blocks its builds for
    type-approval, instead of making a decision too large for the broker, which
    would put the record in the DLQ. The count keeps the severity and owner of
    the first finding it stands for, so a record with an error stays blocked.
    """
    if len(findings) <= limit:
        return findings
    ordered = sorted(findings, key=lambda f: f.severity is not Severity.ERROR)  # stable: order kept
    kept, rest = ordered[: limit - 1], ordered[limit - 1 :]
    counts = Counter(f.code for f in rest)
    codes = ", ".join(f"{code} {n}" for code, n in counts.most_common(5)) + (", …" if len(counts) > 5 else "")
    message = f"{len(rest)} more findings not listed ({codes}); correct the ones above first"
    return [*kept, finding("MORE_FINDINGS", ROOT, message, rest[0].owner, rest[0].severity)]


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]
