"""Deterministic sample data: approval master data, MES build records and planted defects.

``generate`` is pure: the same arguments give the same sample set, and ``write`` turns
it into the same bytes. The approvals are fixed master data
(``devkit/data/approvals.json``, read by ``devkit.approvals``); the seed chooses the vehicles: which version,
when built, for which country, in which colour, on which tyres, with which actual mass.

A share of the builds carries exactly one real-world defect that the validation rules
must catch, with the finding code and owning team they must report; ``defects.json``
lists them so tests and demos can check every one.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devkit.approvals import TypeSpec, VariantSpec, VersionSpec, approval, types
from shared.contracts import Approval, ApprovalRef, BuildRecord, FittedTyre, Owner
from shared.vin import check_digit

# Production window: from the first day the eCoC duty applies to (vehicles made after
# 5 July 2026, Regulation (EU) 2018/858 Article 37 and IVI 2.0) to a fixed end, so no
# date depends on the day the samples are made.
PRODUCTION_START = dt.date(2026, 7, 6)
PRODUCTION_END = dt.date(2026, 10, 30)
SAST = dt.timezone(dt.timedelta(hours=2))  # South African Standard Time, no daylight saving

# VIN position 10, model year (ISO 3779 / 49 CFR 565.15); the model year starts in September.
MODEL_YEAR_CODES = {2026: "T", 2027: "V"}
MODEL_YEAR_START_MONTH = 9
CHECK_DIGIT = 8  # index of VIN position 9
VIS_SERIAL = 11  # index of VIN position 12, where the six-digit serial starts
# Serials start below 90000 and rise by at most 4 a vehicle: six digits hold 200000 vehicles a plant.
MAX_VEHICLES = 200_000

# How often each type is built, and the EU markets the plants ship to (Vienna codes).
TYPE_WEIGHTS = {"KS1H": 35, "KS1E": 10, "KK2S": 30, "MR3P": 25}
COUNTRY_WEIGHTS = {"D": 30, "F": 14, "I": 12, "E": 10, "NL": 9, "B": 7, "PL": 7, "A": 5, "S": 4, "P": 2}
# IVI colour codes in the order of Regulation (EU) 2020/683's basic colours:
# 1 white, 2 yellow, 3 orange, 4 red, 5 purple, 6 blue, 7 green, 8 grey, 9 brown, 10 black.
COLOUR_WEIGHTS = {"1": 30, "8": 24, "10": 20, "6": 10, "4": 8, "7": 3, "9": 2, "3": 1, "2": 1, "5": 1}
TWO_TONE_SHARE = 0.15  # a contrasting roof: a second colour
BLACK = "10"

FILES = ("approvals.json", "builds.jsonl", "defects.json")


class SampleError(ValueError):
    """Arguments the generator cannot honour; the message names the option."""


@dataclass(frozen=True)
class PlantedDefect:
    """One defect planted in a build, and the finding the rules must give for it."""

    defect: str
    expected_code: str
    owner: Owner

    def as_json(self) -> dict[str, str]:
        return {"defect": self.defect, "expected_code": self.expected_code, "owner": self.owner.value}


@dataclass(frozen=True)
class SampleSet:
    approvals: tuple[Approval, ...]
    builds: tuple[BuildRecord, ...]
    defects: Mapping[str, PlantedDefect]  # build_id -> the defect planted in that build


@dataclass(frozen=True)
class Plan:
    """What one vehicle is built to, before it gets its VIN and serial."""

    spec: TypeSpec
    variant: VariantSpec
    version: VersionSpec
    approval: Approval
    manufactured_on: dt.date


# --- the public API -----------------------------------------------------------------------------


def generate(vehicles: int, seed: int, defect_share: float) -> SampleSet:
    """``vehicles`` build records for the sample approvals; ``defect_share`` of them defective."""
    check_arguments(vehicles, defect_share)
    rng = random.Random(seed)
    versions = catalogue()
    plans = sorted((plan(rng, versions) for _ in range(vehicles)), key=lambda p: p.manufactured_on)
    builds = number_builds(rng, plans)
    master = tuple(entry.approval for entries in versions.values() for entry in entries)
    return plant_defects(rng, master, builds, plans, defect_share)


def write(sample_set: SampleSet, out_dir: Path) -> list[Path]:
    """Write approvals.json, builds.jsonl and defects.json into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    approvals_json = [item.model_dump(mode="json") for item in sample_set.approvals]
    defects_json = {build_id: defect.as_json() for build_id, defect in sorted(sample_set.defects.items())}
    contents = (
        json.dumps(approvals_json, indent=2, ensure_ascii=False) + "\n",
        "".join(build.model_dump_json() + "\n" for build in sample_set.builds),
        json.dumps(defects_json, indent=2, ensure_ascii=False) + "\n",
    )
    paths = [out_dir / name for name in FILES]
    for path, text in zip(paths, contents, strict=True):
        path.write_text(text, encoding="utf-8")
    return paths


def check_arguments(vehicles: int, defect_share: float) -> None:
    if not 0 <= vehicles <= MAX_VEHICLES:
        raise SampleError(f"--vehicles must be between 0 and {MAX_VEHICLES}, not {vehicles}")
    if not 0.0 <= defect_share <= 1.0:  # also refuses NaN
        raise SampleError(f"--defect-share must be between 0 and 1, not {defect_share}")


# --- clean builds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One approved version with its place in the master data."""

    spec: TypeSpec
    variant: VariantSpec
    version: VersionSpec
    approval: Approval


def catalogue() -> dict[str, list[Entry]]:
    """Type -> its approved versions, each Approval made once."""
    return {
        spec.type: [
            Entry(spec, variant, version, approval(spec, variant, version))
            for variant in spec.variants
            for version in variant.versions
        ]
        for spec in types()
    }


def plan(rng: random.Random, versions: Mapping[str, Sequence[Entry]]) -> Plan:
    spec_type = rng.choices(list(TYPE_WEIGHTS), weights=list(TYPE_WEIGHTS.values()))[0]
    entry = rng.choice(versions[spec_type])
    first = max(PRODUCTION_START, entry.spec.issue_date + dt.timedelta(days=1))
    made = first + dt.timedelta(days=rng.randrange((PRODUCTION_END - first).days + 1))
    return Plan(entry.spec, entry.variant, entry.version, entry.approval, made)


def number_builds(rng: random.Random, plans: Sequence[Plan]) -> list[BuildRecord]:
    """Give each planned vehicle its serial, VIN and build record, in order of manufacture.

    Serials count up per plant from a seeded start, with gaps for the vehicles the plant
    builds for other markets in between.
    """
    serials = {spec.manufacturer.plant_code: rng.randrange(10_000, 90_000) for spec in types()}
    builds = []
    for item in plans:
        code = item.spec.manufacturer.plant_code
        serials[code] += rng.randint(1, 4)
        builds.append(build_record(rng, item, serials[code]))
    return builds


def build_record(rng: random.Random, item: Plan, serial: int) -> BuildRecord:
    maker = item.spec.manufacturer
    return BuildRecord(
        vin=vin(item.spec.wmi, item.version.vds, item.manufactured_on, maker.plant_code, serial),
        build_id=f"{maker.plant_code}{item.manufactured_on:%y%m%d}-{serial:06d}",
        revision=1,
        manufactured_on=item.manufactured_on,
        plant=maker.plant,
        vehicle_group=item.spec.vehicle_group,
        approval=ApprovalRef(
            number=item.spec.number,
            type=item.spec.type,
            variant=item.variant.variant,
            version=item.version.version,
        ),
        intended_country=rng.choices(list(COUNTRY_WEIGHTS), weights=list(COUNTRY_WEIGHTS.values()))[0],
        actual_mass_kg=actual_mass(rng, item.approval),
        colours=colours(rng),
        tyres=fitted_tyres(rng, item.approval),
        released_at=released_at(rng, item.manufactured_on),
    )


def vin(wmi: str, vds: str, made: dt.date, plant_code: str, serial: int) -> str:
    """WMI + VDS + check digit + model year, plant and serial (ISO 3779)."""
    year = made.year + (made.month >= MODEL_YEAR_START_MONTH)
    draft = f"{wmi}{vds}0{MODEL_YEAR_CODES[year]}{plant_code}{serial:06d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def actual_mass(rng: random.Random, item: Approval) -> int:
    """Mass in running order plus a share of the optional equipment; most vehicles carry some."""
    assert item.actual_mass_min_kg is not None and item.actual_mass_max_kg is not None
    return round(rng.triangular(item.actual_mass_min_kg, item.actual_mass_max_kg))


def colours(rng: random.Random) -> tuple[str, ...]:
    main = rng.choices(list(COLOUR_WEIGHTS), weights=list(COLOUR_WEIGHTS.values()))[0]
    if main != BLACK and rng.random() < TWO_TONE_SHARE:
        return (main, BLACK)
    return (main,)


def fitted_tyres(rng: random.Random, item: Approval) -> tuple[FittedTyre, ...]:
    """One approved option for the car, fitted on every axle (the options are numbered alike)."""
    options = tyre_options(item)
    option = rng.choice(sorted(set.intersection(*options.values())))
    return tuple(FittedTyre(axle=axle, option=option) for axle in sorted(options))


def tyre_options(item: Approval) -> dict[int, set[int]]:
    """Axle number -> the TyreNumbers approved on it."""
    return {
        int(axle["AxleNumber"]): {int(tyre["TyreNumber"]) for tyre in axle["TyreAxleTable"]["TyreAxleGroup"]}
        for axle in item.certificate["AxleTable"]["AxleGroup"]
    }


def released_at(rng: random.Random, made: dt.date) -> dt.datetime:
    """End-of-line release: during the two shifts of the day of manufacture or the next morning."""
    minutes = rng.randrange(6 * 60, 30 * 60)
    start = dt.datetime.combine(made, dt.time(0, 0), tzinfo=SAST)
    return start + dt.timedelta(minutes=minutes, seconds=rng.randrange(60), milliseconds=rng.randrange(1000))


# --- planted defects ----------------------------------------------------------------------------

Defector = Callable[[random.Random, BuildRecord, Plan], BuildRecord]


def without_mass(rng: random.Random, build: BuildRecord, item: Plan) -> BuildRecord:
    """The weighbridge result never reached the MES."""
    return build.model_copy(update={"actual_mass_kg": None})


def mass_out_of_range(rng: random.Random, build: BuildRecord, item: Plan) -> BuildRecord:
    """Mass of an option the version does not allow, or a mistyped weighing."""
    low, high = item.approval.actual_mass_min_kg, item.approval.actual_mass_max_kg
    assert low is not None and high is not None
    mass = high + rng.randint(8, 90) if rng.random() < 0.7 else low - rng.randint(8, 60)
    return build.model_copy(update={"actual_mass_kg": mass})


def vin_with_letter_o(rng: random.Random, build: BuildRecord, item: Plan) -> BuildRecord:
    """The letter O keyed for a zero of the serial, else for the check digit (ISO 3779 excludes I, O, Q).

    Either way the VIN stays unique: the check digit follows from the other sixteen
    characters, and the first zero of the serial is the one replaced.
    """
    zero = build.vin.find("0", VIS_SERIAL)
    position = zero if zero >= 0 else CHECK_DIGIT
    return build.model_copy(update={"vin": build.vin[:position] + "O" + build.vin[position + 1 :]})


def vin_with_foreign_wmi(rng: random.Random, build: BuildRecord, item: Plan) -> BuildRecord:
    """The other group company's WMI keyed (a shared line's template): a VIN the holder may not issue.

    The plant code and serial stay, so the VIN stays unique; the check digit is
    made again, so the WMI is the one defect. (An 18-character VIN, the scanner
    bounce, no longer reaches validation: intake refuses it by the schema's
    length facet.)
    """
    own = set(item.spec.manufacturer.wmis)
    foreign = sorted({wmi for spec in types() for wmi in spec.manufacturer.wmis} - own)
    draft = foreign[0] + build.vin[3:]  # no draw: the other builds of a seed stay as they were
    return build.model_copy(
        update={"vin": draft[:CHECK_DIGIT] + check_digit(draft) + draft[CHECK_DIGIT + 1 :]}
    )


def unapproved_version(rng: random.Random, build: BuildRecord, item: Plan) -> BuildRecord:
    """Built to a version whose extension type-approval has not loaded yet."""
    variant, version = rng.choice(item.spec.pending_versions)
    ref = build.approval.model_copy(update={"variant": variant, "version": version})
    return build.model_copy(update={"approval": ref})


def unapproved_tyre(rng: random.Random, build: BuildRecord, item: Plan) -> BuildRecord:
    """A tyre option the version does not list, fitted on one axle."""
    options = tyre_options(item.approval)
    axle = rng.choice(sorted(options))
    wrong = FittedTyre(axle=axle, option=max(options[axle]) + 1)
    return build.model_copy(update={"tyres": tuple(wrong if t.axle == axle else t for t in build.tyres)})


def without_colour(rng: random.Random, build: BuildRecord, item: Plan) -> BuildRecord:
    """The paint-shop record is missing."""
    return build.model_copy(update={"colours": ()})


DEFECTS: tuple[tuple[PlantedDefect, Defector], ...] = (
    (PlantedDefect("actual-mass-missing", "ACTUAL_MASS_MISSING", Owner.PRODUCTION), without_mass),
    (
        PlantedDefect("actual-mass-out-of-range", "ACTUAL_MASS_OUT_OF_RANGE", Owner.PRODUCTION),
        mass_out_of_range,
    ),
    (PlantedDefect("vin-letter-o", "VIN_CHARACTERS", Owner.PRODUCTION), vin_with_letter_o),
    (PlantedDefect("vin-foreign-wmi", "VIN_WMI_FOREIGN", Owner.PRODUCTION), vin_with_foreign_wmi),
    (PlantedDefect("version-not-approved", "APPROVAL_UNKNOWN", Owner.TYPE_APPROVAL), unapproved_version),
    (PlantedDefect("tyre-not-approved", "TYRE_NOT_APPROVED", Owner.PRODUCTION), unapproved_tyre),
    (PlantedDefect("colour-missing", "COLOUR_MISSING", Owner.PRODUCTION), without_colour),
)


def plant_defects(
    rng: random.Random,
    master: tuple[Approval, ...],
    builds: Sequence[BuildRecord],
    plans: Sequence[Plan],
    share: float,
) -> SampleSet:
    """Give ``share`` of the builds one defect each, the kinds taken in turn so all occur."""
    chosen = rng.sample(range(len(builds)), k=round(len(builds) * share))
    offset = rng.randrange(len(DEFECTS))
    result = list(builds)
    planted: dict[str, PlantedDefect] = {}
    for turn, index in enumerate(chosen):
        defect, apply = DEFECTS[(offset + turn) % len(DEFECTS)]
        result[index] = apply(rng, builds[index], plans[index])
        planted[builds[index].build_id] = defect
    return SampleSet(approvals=master, builds=tuple(result), defects=planted)
