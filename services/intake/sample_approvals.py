"""Sample approval master data: two fictional South African manufacturers exporting to the EU.

Four approved types (a petrol hatchback, its battery-electric sister, a hybrid SUV, all
M1, and a diesel pick-up, N1), each with variants and versions, and for every version
the CocDataGroup content it fixes, keyed by IVI 2.0 element names the way
``shared.contracts.approvals`` describes: a group is a mapping, an element that may
repeat (``...Group`` inside a ``...Table``) a list, a leaf its lexical value.

The trees follow the official M1 specimen (Toyota C-HR) and hold no per-vehicle element
(``shared.ivi.PER_VEHICLE``): VIN, date of manufacture, colour, actual mass, fitted-tyre
indicator and signature date come from the build record; number, issue date, type,
variant, version and category from the Approval's own fields.

The companies, makes, WMIs and approval numbers are made up; the values are plausible
for their class of vehicle, not copied from a real certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.contracts import Approval

Tree = dict[str, Any]

# CO2 (g/km) per litre of fuel burnt per 100 km: the carbon balance of the WLTP test fuels
# (Regulation (EU) 2017/1151, Annex XXI, Sub-Annex 7): petrol E10 about 23.3, diesel B7 26.4.
CO2_PER_LITRE = {"10": 23.3, "20": 26.4}

# Systems every new M1 and N1 type carries: the GSR2 list (Regulation (EU) 2019/2144, Annex II)
# and eCall (Regulation (EU) 2015/758); ADDW (advanced driver distraction warning) for types
# approved from 7 July 2024 (2019/2144, Annex II, phase C).
GSR2_SYSTEMS = ("AEBS", "ELKS", "ISA", "DDAW", "ESS", "EDR", "AIF", "TPMS", "eCall")
ADDW_FROM = dt.date(2024, 7, 7)


@dataclass(frozen=True)
class Manufacturer:
    """The approval holder: its IVI groups, its WMIs and the plant that builds for export."""

    make: str
    wmis: tuple[str, ...]
    plant: str  # plant name in the build record
    plant_code: str  # VIN position 11
    manufacturer: Tree  # ManufacturerGroup
    eu_representative: Tree  # EURepresentativeGroup
    signer: Tree  # SigningAuthorityGroup without the per-vehicle SignatureDate


@dataclass(frozen=True)
class VersionSpec:
    """One approved version: its VIN descriptor, optional-equipment mass and certificate values."""

    version: str
    vds: str  # VIN positions 4-8; position 9 is the check digit
    optional_equipment_kg: int  # actual mass = mass in running order + 0..this
    certificate: Tree


@dataclass(frozen=True)
class VariantSpec:
    variant: str
    certificate: Tree
    versions: tuple[VersionSpec, ...]


@dataclass(frozen=True)
class TypeSpec:
    """An approved type: one approval number (its current extension) for all its versions."""

    manufacturer: Manufacturer
    number: str
    issue_date: dt.date
    designated_country: str
    type: str
    category: str
    wmi: str
    vehicle_group: str  # release group in the build record: the commercial line
    certificate: Tree
    variants: tuple[VariantSpec, ...]
    # Versions the plant already builds while their extension is still with the authority:
    # a build naming one is APPROVAL_UNKNOWN until type-approval loads it.
    pending_versions: tuple[tuple[str, str], ...]  # (variant, version)


# --- building blocks ----------------------------------------------------------------------------


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> Tree:
    """``base`` with ``override`` laid over it: groups merge, lists and leaves are replaced."""
    result = dict(base)
    for name, value in override.items():
        below = result.get(name)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            result[name] = merged(below, value)
        else:
            result[name] = value
    return result


def table(group: str, *items: Tree) -> Tree:
    """A ``...Table`` with its repeated ``...Group`` items."""
    return {group: list(items)}


def codes(group: str, element: str, *values: str) -> Tree:
    """A table of one-code groups, e.g. the advanced safety systems."""
    return table(group, *({element: value} for value in values))


def tyre(
    number: int, size: str, load_index: int, speed: str, rim: str, offset: int, rolling: str, category: str
) -> Tree:
    """One approved tyre and rim option of an axle (TyreAxleGroup, no fitted indicator)."""
    return {
        "TyreNumber": str(number),
        "TyreSize": size,
        "LoadCapacityIndexSingleWheel": str(load_index),
        "SpeedCategorySymbol": speed,
        "RimSize": rim,
        "RimOffSet": str(offset),
        "TyreMaximumSpeedIndicator": "N",
        "RollingResistanceClass": rolling,
        "TyreCategory": category,
    }


def axles(
    wheelbase: int, tracks: tuple[int, int], masses: tuple[int, int], powered: str, tyres: list[Tree]
) -> Tree:
    """AxleTable of a two-axle vehicle; ``powered`` is "1", "2" or "12"; both axles take the same options."""
    return table(
        "AxleGroup",
        {
            "AxleNumber": "1",
            "PoweredAxleIndicator": "Y" if "1" in powered else "N",
            "AxleTrack": str(tracks[0]),
            "AxleSpacing": str(wheelbase),
            "TechnicallyPermissibleMassAxle": str(masses[0]),
            "TyreAxleTable": {"TyreAxleGroup": tyres},
        },
        {
            "AxleNumber": "2",
            "PoweredAxleIndicator": "Y" if "2" in powered else "N",
            "AxleTrack": str(tracks[1]),
            "TechnicallyPermissibleMassAxle": str(masses[1]),
            "TyreAxleTable": {"TyreAxleGroup": tyres},
        },
    )


def masses(running_order: int, maximum_laden: int, coupling_vertical: int) -> Tree:
    """MassGroup without the per-vehicle ActualMass."""
    return {
        "MassInRunningOrder": str(running_order),
        "TechnicallyPermissibleMaximumLadenMass": str(maximum_laden),
        "MaximumStaticVerticalMassCouplingPointTable": table(
            "MaximumStaticVerticalMassCouplingPointGroup",
            {"TechnicallyPermissibleMaximumStaticVerticalMassCouplingPoint": str(coupling_vertical)},
        ),
    }


def towing(braked: int, unbraked: int, combination: int) -> Tree:
    """TowingBrakedTypeTrailTable shaped as in the specimen: braked, unbraked, combination."""
    return table(
        "TowingBrakedTypeTrailGroup",
        {
            "BrakedTypeTrail": "BRK",
            "BodyworkTypeTable": codes_with_mass(braked),
        },
        {
            "BrakedTypeTrail": "UNB",
            "BodyworkTypeTable": table(
                "BodyworkTypeGroup", {"TechnicallyPermissibleMaximumTowableMass": str(unbraked)}
            ),
        },
        {
            "BodyworkTypeTable": table(
                "BodyworkTypeGroup", {"TechnicallyPermissibleMaximumCombinationMass": str(combination)}
            )
        },
    )


def codes_with_mass(braked: int) -> Tree:
    """Braked towable mass for centre-axle (DB) and full (DC) trailers."""
    return table(
        "BodyworkTypeGroup",
        *(
            {"BodyworkTypeTrailer": kind, "TechnicallyPermissibleMaximumTowableMass": str(braked)}
            for kind in ("DB", "DC")
        ),
    )


def wltp_test(test_mass: int, f0: str, f1: str, f2: str, grill: int) -> Tree:
    """WltpEmissionTestParametersGroup: test mass, road-load coefficients, cycle class 3b."""
    return {
        "WltpEmissionTestMass": str(test_mass),
        "WltpRoadLoadCoefficientF0": f0,
        "WltpRoadLoadCoefficientF1": f1,
        "WltpRoadLoadCoefficientF2": f2,
        "ProjectedFrontalAreaAirEntranceFrontGrill": str(grill),
        "DrivingCycleClass": "3b",
        "DrivingCycleCappedSpeedIndicator": "N",
    }


def wltp_co2(source: str, low: int, medium: int, high: int, extra_high: int, combined: int) -> Tree:
    """CO2 per WLTP phase (g/km) and the fuel consumption (l/100 km) that goes with it."""
    phases = {"Low": low, "Medium": medium, "High": high, "ExtraHigh": extra_high, "Combined": combined}
    per_litre = CO2_PER_LITRE[source]
    return {
        "TestWltpCo2Group": {f"WltpCo2{phase}": str(value) for phase, value in phases.items()},
        "TestWltpFuelConsumptionGroup": {
            f"WltpFuelConsumption{phase}": f"{value / per_litre:.1f}" for phase, value in phases.items()
        },
    }


def families(wmi: str, number: int, *kinds: str) -> Tree:
    """TestFamilyIdentifiersTable: interpolation, road-load, ATCT, PEMS ... family names."""
    prefixes = {"IP": "IP", "RL": "RL", "ATCT": "AT", "PEMS": "PE", "EV": "EV"}
    return table(
        "TestFamilyIdentifiersGroup",
        *(
            {
                "TestFamilyIdentifier": kind,
                "TestFamilyIdentifierValue": f"{prefixes[kind]}-{number:04d}-{wmi}",
            }
            for kind in kinds
        ),
    )


def combustion_engine(
    maker: str, code: str, principle: str, cylinders: int, capacity: int, *, source: Tree
) -> Tree:
    """An EnergyConvertorGroup of a four-stroke in-line engine with its one energy source."""
    return {
        "ManufacturerEnergyConvertor": maker,
        "EnergyConvertorCodeMarkedOnEnergyConvertor": code,
        "WorkingPrinciple": principle,
        "CombustionCycle": "4ST",
        "NumberOfCylinders": str(cylinders),
        "ArrangementCylinders": "LI",
        "EngineCapacity": str(capacity),
        "EnergySourceTable": table("EnergySourceGroup", source),
    }


def electric_motor(maker: str, code: str, *, source: Tree) -> Tree:
    """An EnergyConvertorGroup of an electric machine: working principle ELECT, source 95."""
    return {
        "ManufacturerEnergyConvertor": maker,
        "EnergyConvertorCodeMarkedOnEnergyConvertor": code,
        "WorkingPrinciple": "ELECT",
        "EnergySourceTable": table("EnergySourceGroup", source),
    }


def electric_power(thirty_minutes: str, maximum: str) -> Tree:
    return {
        "EnergySource": "95",
        "PowerGroup": {"Maximum30MinutesPower": thirty_minutes, "MaximumNetPowerElectric": maximum},
    }


def sound(stationary: int, engine_speed: int, drive_by: int) -> Tree:
    return {
        "SoundLevelStationary": str(stationary),
        "SoundLevelStationaryEngineSpeed": str(engine_speed),
        "SoundLevelDriveBy": str(drive_by),
    }


def power(kilowatt: int, engine_speed: int) -> Tree:
    return {"MaximumNetPowerCombustion": str(kilowatt), "EngineSpeedMaximumNetPower": str(engine_speed)}


def location_markings(vin_part: str, vin_side: str, plate_part: str, plate_side: str) -> Tree:
    """Where the VIN is stamped and the statutory plate is fixed."""
    return table(
        "LocationMarkingsGroup",
        {
            "LocationMarkingsSubject": "VIN",
            "LocationMarkingsVehiclePart": vin_part,
            "LocationMarkingsVehiclePartSide": vin_side,
            "LocationMarkingsVehiclePartSideSection": "FRONT",
        },
        {
            "LocationMarkingsSubject": "STAT",
            "LocationMarkingsVehiclePart": plate_part,
            "LocationMarkingsVehiclePartSide": plate_side,
        },
    )


def safety_systems(issue_date: dt.date) -> Tree:
    systems = (*GSR2_SYSTEMS, "ADDW") if issue_date >= ADDW_FROM else GSR2_SYSTEMS
    return codes("AdvancedSafetySystemsGroup", "AdvancedSafetySystem", *systems)


def common_certificate(maker: Manufacturer, commercial_name: str, issue_date: dt.date) -> Tree:
    """The part every version of every type states alike (the specimen's first lines)."""
    return {
        "TypeApprovalType": "EU",
        "ProvisionalTypeApprovalIndicator": "N",
        "StageOfCompletion": "C",
        "MethodAttachmentStatutoryPlate": "A1",
        "RightLeftHandTraffic": "RIGHT",  # built for continental right-hand traffic
        "MetricImperialSpeedometer": "M",
        "MetricImperialOdometer": "M",
        "VehicleCertified155Indicator": "Y",  # UN R155 cyber security
        "VehicleCertified156Indicator": "Y",  # UN R156 software updates
        "SigningAuthorityTable": table("SigningAuthorityGroup", maker.signer),
        "MakeTable": table("MakeGroup", {"Make": maker.make}),
        "CommercialNameTable": table("CommercialNameGroup", {"CommercialName": commercial_name}),
        "ManufacturerTable": table("ManufacturerGroup", maker.manufacturer),
        "EURepresentativeGroup": maker.eu_representative,
        "AdvancedSafetySystemsTable": safety_systems(issue_date),
    }


# --- the manufacturers --------------------------------------------------------------------------

KAROO = Manufacturer(
    make="KAROO",
    wmis=("AB7", "AC3"),
    plant="KMW ROSSLYN",
    plant_code="R",
    manufacturer={
        "ManufacturerStageNumber": "1",
        "ManufacturerName": "KAROO MOTOR WORKS (PTY) LTD",
        "ManufacturerAddressLine1": "14 ASSEMBLY ROAD",
        "ManufacturerAddressLine2": "ROSSLYN INDUSTRIAL PARK",
        "ManufacturerPlaceOfResidence": "PRETORIA",
        "ManufacturerCountryOfResidence": "SOUTH AFRICA",
    },
    eu_representative={
        "EURepresentativeName": "KAROO MOTOR WORKS EUROPE B.V.",
        "EURepresentativeAddressLine1": "STATIONSPLEIN 45",
        "EURepresentativeAddressLine2": "3511 ED",
        "EURepresentativePlaceOfResidence": "UTRECHT",
        "EURepresentativeCountryOfResidence": "NETHERLANDS",
    },
    signer={
        "SignerName": "THANDIWE MOKOENA",
        "SignerPosition": "HEAD OF HOMOLOGATION AND CERTIFICATION",
        "SignatureLocation": "PRETORIA, GAUTENG",
    },
)

MOPANI = Manufacturer(
    make="MOPANI",
    wmis=("AE5", "AE6"),
    plant="MUV GQEBERHA",
    plant_code="G",
    manufacturer={
        "ManufacturerStageNumber": "1",
        "ManufacturerName": "MOPANI UTILITY VEHICLES (PTY) LTD",
        "ManufacturerAddressLine1": "3 HARROWER ROAD",
        "ManufacturerAddressLine2": "STRUANDALE",
        "ManufacturerPlaceOfResidence": "GQEBERHA",
        "ManufacturerCountryOfResidence": "SOUTH AFRICA",
    },
    eu_representative={
        "EURepresentativeName": "MOPANI UTILITY VEHICLES EUROPE GMBH",
        "EURepresentativeAddressLine1": "HANAUER LANDSTRASSE 210",
        "EURepresentativeAddressLine2": "60314",
        "EURepresentativePlaceOfResidence": "FRANKFURT AM MAIN",
        "EURepresentativeCountryOfResidence": "GERMANY",
    },
    signer={
        "SignerName": "PIETER VAN DER MERWE",
        "SignerPosition": "MANAGER VEHICLE CERTIFICATION",
        "SignatureLocation": "GQEBERHA, EASTERN CAPE",
    },
)

KMW = "KAROO MOTOR WORKS"
MUV = "MOPANI UTILITY VEHICLES"

# --- SPRINGBOK: five-door hatchback, petrol (M1) ------------------------------------------------

SPRINGBOK_ISSUED = dt.date(2024, 3, 14)
SPRINGBOK_TYRES = [
    tyre(1, "185/65R15", 88, "H", "15X6J", 40, "B", "C1"),
    tyre(2, "195/55R16", 87, "V", "16X6.5J", 45, "C", "C1"),
    tyre(3, "205/45R17", 88, "V", "17X7J", 48, "C", "C1"),
]
SPRINGBOK_BODY: Tree = {
    "EcoInnovationsFittedIndicator": "Y",
    "PureElectricVehicleIndicator": "N",
    "ExhaustEmissionLevel": "Euro 6 EA",
    "ExhaustEmissionLatestRegulationNumber": "715/2007*2023/443EA",
    "WltpTotalCo2EmissionSavedDueEcoInnovation": "0.80",
    "FuelType": "M",
    "LocationMarkingsTable": location_markings("PASCT", "RIGHTSIDE", "BPILR", "LEFTSIDE"),
    "GeneralConstructionGroup": {
        "NumberOfAxles": "2",
        "NumberOfWheels": "4",
        "NumberOfPoweredAxles": "1",
        "NumberOfDoors": "5",
        "AutomatedVehicle": "NONAT",
        "NumberOfSeatingPositionsIncludingDriver": "5",
    },
    "DimensionGroup": {"Wheelbase": "2560", "Length": "4065", "Width": "1750", "Height": "1480"},
    "BodyworkTable": table("BodyworkGroup", {"CodeForBodywork": "AB"}),
    "ConfigurationDoorsGroup": {
        "NumberOfDoorsLeft": "2",
        "NumberOfDoorsRight": "2",
        "NumberOfDoorsBack": "1",
    },
    "EcoInnovationsTable": table(
        "EcoInnovationsGroup", {"EcoInnovationCountry": "e4", "GeneralCodeEcoInnovation": "37"}
    ),
}


def springbok_petrol(
    code: str, capacity: int, kilowatt: int, rpm: int, co2: tuple[int, int, int, int, int]
) -> Tree:
    """The turbo-petrol engines of the Springbok, direct injection (particle number stated)."""
    source = {
        "EnergySource": "10",
        "SoundLevelGroup": sound(76, 3750, 69),
        "PowerGroup": power(kilowatt, rpm),
        "TestRdeGroup": {
            "RdeCompleteNox": "18",
            "RdeCompleteNumberOfParticles": "2.10",
            "RdeCompleteNumberOfParticlesExponent": "11",
            "RdeUrbanNox": "24",
        },
        "TestWltpType1Group": {
            "WltpType1Co": "182.40",
            "WltpType1Thc": "24.60",
            "WltpType1Nmhc": "19.80",
            "WltpType1Nox": "11.90",
            "WltpType1Particulates": "0.41",
            "WltpType1NumberOfParticles": "1.85",
            "WltpType1NumberOfParticlesExponent": "11",
        },
        **wltp_co2("10", *co2),
        "TestFamilyIdentifiersTable": families("AB7", 101, "IP", "RL", "ATCT", "PEMS"),
    }
    return table(
        "EnergyConvertorGroup",
        combustion_engine(KMW, code, "INTPI", 3 if capacity < 1200 else 4, capacity, source=source),
    )


SPRINGBOK = TypeSpec(
    manufacturer=KAROO,
    number="e4*2018/858*01234*02",
    issue_date=SPRINGBOK_ISSUED,
    designated_country="e4",
    type="KS1H",
    category="M1",
    wmi="AB7",
    vehicle_group="SPRINGBOK",
    certificate=merged(common_certificate(KAROO, "SPRINGBOK", SPRINGBOK_ISSUED), SPRINGBOK_BODY),
    variants=(
        VariantSpec(
            variant="KS1HA",
            certificate={"MaximumSpeed": "183", "GearGroup": {"GearboxType": "M"}},
            versions=(
                VersionSpec(
                    version="KS1HA-M6LT(1A)",
                    vds="SH1A6",
                    optional_equipment_kg=38,
                    certificate={
                        "MassGroup": masses(1135, 1600, 60),
                        "TowingBrakedTypeTrailTable": towing(1000, 550, 2600),
                        "AxleTable": axles(2560, (1510, 1495), (860, 800), "1", SPRINGBOK_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1262, "112.4", "0.185", "0.0341", 388),
                        "EnergyConvertorTable": springbok_petrol(
                            "K10T3", 999, 70, 5250, (148, 118, 107, 132, 123)
                        ),
                    },
                ),
                VersionSpec(
                    version="KS1HA-M6HL(1B)",
                    vds="SH1B6",
                    optional_equipment_kg=56,
                    certificate={
                        "MassGroup": masses(1162, 1620, 60),
                        "TowingBrakedTypeTrailTable": towing(1000, 580, 2620),
                        "AxleTable": axles(2560, (1505, 1490), (870, 800), "1", SPRINGBOK_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1296, "118.9", "0.201", "0.0349", 388),
                        "EnergyConvertorTable": springbok_petrol(
                            "K10T3", 999, 85, 5500, (152, 121, 110, 135, 126)
                        ),
                    },
                ),
            ),
        ),
        VariantSpec(
            variant="KS1HB",
            certificate={"MaximumSpeed": "210", "GearGroup": {"GearboxType": "A"}},
            versions=(
                VersionSpec(
                    version="KS1HB-A7HL(1C)",
                    vds="SH2C7",
                    optional_equipment_kg=52,
                    certificate={
                        "MassGroup": masses(1248, 1710, 70),
                        "TowingBrakedTypeTrailTable": towing(1200, 620, 2910),
                        "AxleTable": axles(2560, (1505, 1490), (930, 820), "1", SPRINGBOK_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1381, "124.7", "0.228", "0.0352", 402),
                        "EnergyConvertorTable": springbok_petrol(
                            "K15T4", 1498, 110, 5500, (171, 134, 121, 149, 139)
                        ),
                    },
                ),
                VersionSpec(
                    version="KS1HB-A7GT(1D)",
                    vds="SH2D7",
                    optional_equipment_kg=64,
                    certificate={
                        "MassGroup": masses(1276, 1730, 70),
                        "TowingBrakedTypeTrailTable": towing(1200, 630, 2930),
                        "AxleTable": axles(2560, (1500, 1485), (940, 820), "1", SPRINGBOK_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1412, "129.3", "0.244", "0.0361", 402),
                        "EnergyConvertorTable": springbok_petrol(
                            "K15T4", 1498, 118, 5750, (176, 138, 124, 153, 143)
                        ),
                    },
                ),
            ),
        ),
    ),
    pending_versions=(("KS1HA", "KS1HA-M6SP(1E)"), ("KS1HB", "KS1HB-A7RS(1F)")),
)

# --- SPRINGBOK E: the battery-electric hatchback (M1, every energy source 95) ------------------

SPRINGBOK_E_ISSUED = dt.date(2025, 6, 30)
SPRINGBOK_E_BODY: Tree = {
    "MaximumSpeed": "150",
    "EcoInnovationsFittedIndicator": "N",
    "PureElectricVehicleIndicator": "Y",  # the only energy source is 95 (guidelines 1.13-1.14)
    "LocationMarkingsTable": location_markings("PASCT", "RIGHTSIDE", "BPILR", "LEFTSIDE"),
    "GeneralConstructionGroup": SPRINGBOK_BODY["GeneralConstructionGroup"],
    "DimensionGroup": {"Wheelbase": "2560", "Length": "4080", "Width": "1750", "Height": "1500"},
    "GearGroup": {"GearboxType": "A"},
    "BodyworkTable": table("BodyworkGroup", {"CodeForBodywork": "AB"}),
    "ConfigurationDoorsGroup": SPRINGBOK_BODY["ConfigurationDoorsGroup"],
}
SPRINGBOK_E_TYRES = [
    tyre(1, "195/60R16", 93, "H", "16X6.5J", 45, "A", "C1"),
    tyre(2, "205/50R17", 93, "V", "17X7J", 48, "B", "C1"),
]


def springbok_e_drive(
    thirty_minutes: str, maximum: str, range_km: int, city_km: int, consumption: str
) -> Tree:
    """The front motor of the Springbok E with its WLTP range and energy consumption (Wh/km)."""
    source = {
        **electric_power(thirty_minutes, maximum),
        "SoundLevelGroup": {"SoundLevelDriveBy": "67"},
        "TestWltpElectricRangeGroup": {
            "WltpPureElectricRange": str(range_km),
            "WltpPureElectricRangeCity": str(city_km),
        },
        "TestWltpEnergyConsumptionGroup": {"WltpEnergyConsumptionPureElectricCombined": consumption},
        "TestFamilyIdentifiersTable": families("AB7", 187, "RL", "EV"),
    }
    return table("EnergyConvertorGroup", electric_motor(KMW, "KEM100", source=source))


SPRINGBOK_E = TypeSpec(
    manufacturer=KAROO,
    number="e6*2018/858*00412*00",
    issue_date=SPRINGBOK_E_ISSUED,
    designated_country="e6",
    type="KS1E",
    category="M1",
    wmi="AB7",
    vehicle_group="SPRINGBOK E",
    certificate=merged(common_certificate(KAROO, "SPRINGBOK E", SPRINGBOK_E_ISSUED), SPRINGBOK_E_BODY),
    variants=(
        VariantSpec(
            variant="KS1E52",
            certificate={
                "ConsolidatedMaximum30MinutesPower": "48.00",
                "ConsolidatedMaximumNetPowerElectric": "100.00",
            },
            versions=(
                VersionSpec(
                    version="KS1E52-LT(5A)",
                    vds="SE1A1",
                    optional_equipment_kg=35,
                    certificate={
                        "MassGroup": masses(1540, 1980, 50),
                        "TowingBrakedTypeTrailTable": towing(750, 500, 2730),
                        "AxleTable": axles(2560, (1515, 1500), (1010, 1000), "1", SPRINGBOK_E_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1668, "98.6", "0.142", "0.0318", 120),
                        "EnergyConvertorTable": springbok_e_drive("48.00", "100.00", 385, 478, "152.00"),
                    },
                ),
                VersionSpec(
                    version="KS1E52-HL(5B)",
                    vds="SE1B1",
                    optional_equipment_kg=48,
                    certificate={
                        "MassGroup": masses(1566, 2000, 50),
                        "TowingBrakedTypeTrailTable": towing(750, 500, 2750),
                        "AxleTable": axles(2560, (1510, 1495), (1020, 1000), "1", SPRINGBOK_E_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1702, "101.2", "0.151", "0.0322", 120),
                        "EnergyConvertorTable": springbok_e_drive("48.00", "100.00", 371, 462, "157.00"),
                    },
                ),
            ),
        ),
    ),
    pending_versions=(("KS1E52", "KS1E52-GT(5C)"),),
)

# --- KUDU HYBRID: mid-size SUV, petrol full hybrid (M1, NOVC-HEV) ------------------------------

KUDU_ISSUED = dt.date(2024, 9, 23)
KUDU_TYRES = [
    tyre(1, "215/65R17", 99, "H", "17X6.5J", 40, "B", "C1"),
    tyre(2, "225/55R18", 98, "V", "18X7J", 45, "B", "C1"),
    tyre(3, "225/50R19", 96, "V", "19X7J", 45, "C", "C1"),
]
KUDU_BODY: Tree = {
    "EcoInnovationsFittedIndicator": "Y",
    "PureElectricVehicleIndicator": "N",  # sources 10 and 95: not every source is electricity
    "ExhaustEmissionLevel": "Euro 6 EA",
    "ExhaustEmissionLatestRegulationNumber": "715/2007*2023/443EA",
    "WltpTotalCo2EmissionSavedDueEcoInnovation": "0.67",
    "ClassHybridVehicle": "NOVC-HEV",
    "FuelType": "M",
    "LocationMarkingsTable": location_markings("PASCT", "RIGHTSIDE", "BPILR", "LEFTSIDE"),
    "GeneralConstructionGroup": {
        "NumberOfAxles": "2",
        "NumberOfWheels": "4",
        "NumberOfPoweredAxles": "1",
        "NumberOfDoors": "5",
        "AutomatedVehicle": "NONAT",
        "NumberOfSeatingPositionsIncludingDriver": "5",
    },
    "DimensionGroup": {"Wheelbase": "2680", "Length": "4480", "Width": "1840", "Height": "1645"},
    "GearGroup": {"GearboxType": "C"},
    "BodyworkTable": table("BodyworkGroup", {"CodeForBodywork": "AF"}),
    "ConfigurationDoorsGroup": {
        "NumberOfDoorsLeft": "2",
        "NumberOfDoorsRight": "2",
        "NumberOfDoorsBack": "1",
    },
    "EcoInnovationsTable": table(
        "EcoInnovationsGroup", {"EcoInnovationCountry": "e4", "GeneralCodeEcoInnovation": "37"}
    ),
}


def kudu_drive(
    code: str, capacity: int, kilowatt: int, motor: tuple[str, str], co2: tuple[int, int, int, int, int]
) -> Tree:
    """Petrol engine (source 10) and traction motor (source 95) of the Kudu hybrid, as in the specimen."""
    petrol = {
        "EnergySource": "10",
        "SoundLevelGroup": sound(68, 2500, 68),
        "PowerGroup": power(kilowatt, 5600),
        "TestRdeGroup": {"RdeCompleteNox": "9", "RdeUrbanNox": "12"},
        "TestWltpType1Group": {
            "WltpType1Co": "121.30",
            "WltpType1Thc": "16.20",
            "WltpType1Nmhc": "14.10",
            "WltpType1Nox": "3.40",
        },
        **wltp_co2("10", *co2),
        "TestFamilyIdentifiersTable": families("AC3", 143, "IP", "RL", "ATCT", "PEMS", "EV"),
    }
    return table(
        "EnergyConvertorGroup",
        combustion_engine(KMW, code, "INTPI", 4, capacity, source=petrol),
        electric_motor(KMW, "KHM80", source=electric_power(*motor)),
    )


KUDU = TypeSpec(
    manufacturer=KAROO,
    number="e4*2018/858*01377*01",
    issue_date=KUDU_ISSUED,
    designated_country="e4",
    type="KK2S",
    category="M1",
    wmi="AC3",
    vehicle_group="KUDU",
    certificate=merged(common_certificate(KAROO, "KUDU HYBRID", KUDU_ISSUED), KUDU_BODY),
    variants=(
        VariantSpec(
            variant="KK2SH15",
            certificate={"MaximumSpeed": "175"},
            versions=(
                VersionSpec(
                    version="KK2SH15-CV(2A)",
                    vds="KS1A5",
                    optional_equipment_kg=42,
                    certificate={
                        "MassGroup": masses(1540, 2050, 75),
                        "TowingBrakedTypeTrailTable": towing(1300, 750, 3350),
                        "AxleTable": axles(2680, (1585, 1595), (1100, 1050), "1", KUDU_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1668, "132.5", "0.214", "0.0398", 455),
                        "EnergyConvertorTable": kudu_drive(
                            "K15HX", 1498, 72, ("40.0", "65.0"), (101, 96, 104, 148, 117)
                        ),
                    },
                ),
                VersionSpec(
                    version="KK2SH15-CVP(2B)",
                    vds="KS1B5",
                    optional_equipment_kg=61,
                    certificate={
                        "MassGroup": masses(1585, 2080, 75),
                        "TowingBrakedTypeTrailTable": towing(1300, 750, 3380),
                        "AxleTable": axles(2680, (1580, 1590), (1120, 1060), "1", KUDU_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1716, "136.8", "0.221", "0.0402", 455),
                        "EnergyConvertorTable": kudu_drive(
                            "K15HX", 1498, 72, ("40.0", "65.0"), (104, 98, 106, 151, 120)
                        ),
                    },
                ),
            ),
        ),
        VariantSpec(
            variant="KK2SH20",
            certificate={"MaximumSpeed": "185"},
            versions=(
                VersionSpec(
                    version="KK2SH20-CV(2C)",
                    vds="KS2C5",
                    optional_equipment_kg=45,
                    certificate={
                        "MassGroup": masses(1612, 2110, 75),
                        "TowingBrakedTypeTrailTable": towing(1500, 750, 3610),
                        "AxleTable": axles(2680, (1585, 1595), (1140, 1060), "1", KUDU_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1745, "138.1", "0.236", "0.0405", 470),
                        "EnergyConvertorTable": kudu_drive(
                            "K20HX", 1987, 112, ("48.0", "83.0"), (108, 101, 108, 156, 122)
                        ),
                    },
                ),
                VersionSpec(
                    version="KK2SH20-CVP(2D)",
                    vds="KS2D5",
                    optional_equipment_kg=66,
                    certificate={
                        "MassGroup": masses(1648, 2140, 75),
                        "TowingBrakedTypeTrailTable": towing(1500, 750, 3640),
                        "AxleTable": axles(2680, (1580, 1590), (1150, 1070), "1", KUDU_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(1790, "142.6", "0.244", "0.0409", 470),
                        "EnergyConvertorTable": kudu_drive(
                            "K20HX", 1987, 112, ("48.0", "83.0"), (111, 103, 110, 159, 125)
                        ),
                    },
                ),
            ),
        ),
    ),
    pending_versions=(("KK2SH20", "KK2SH20-CVX(2E)"),),
)

# --- RHINO: one-tonne pick-up, diesel (N1 class III) -------------------------------------------

RHINO_ISSUED = dt.date(2025, 2, 11)
RHINO_CARGO_TYRES = [
    tyre(1, "215/70R15C", 109, "S", "15X6J", 33, "C", "C2"),
    tyre(2, "205R16C", 110, "R", "16X6J", 30, "C", "C2"),
]
RHINO_LEISURE_TYRES = [
    tyre(1, "255/70R16", 111, "T", "16X7J", 30, "C", "C1"),
    tyre(2, "265/65R17", 112, "H", "17X7.5J", 30, "C", "C1"),
    tyre(3, "265/60R18", 110, "H", "18X7.5J", 30, "C", "C1"),
]
RHINO_BODY: Tree = {
    "EcoInnovationsFittedIndicator": "N",
    "PureElectricVehicleIndicator": "N",
    "ExhaustEmissionLevel": "Euro 6 EC",  # N1 class III
    "ExhaustEmissionLatestRegulationNumber": "715/2007*2023/443EC",
    "FuelType": "M",
    "LocationMarkingsTable": location_markings("CHASS", "RIGHTSIDE", "BPILR", "RIGHTSIDE"),
    "BodyworkTable": table("BodyworkGroup", {"CodeForBodywork": "BE"}),
}


def rhino_diesel(code: str, capacity: int, kilowatt: int, co2: tuple[int, int, int, int, int]) -> Tree:
    """The common-rail diesels of the Rhino (source 20)."""
    source = {
        "EnergySource": "20",
        "SoundLevelGroup": sound(79, 2800, 72),
        "PowerGroup": power(kilowatt, 3400),
        "TestRdeGroup": {
            "RdeCompleteNox": "41",
            "RdeCompleteNumberOfParticles": "1.20",
            "RdeCompleteNumberOfParticlesExponent": "11",
            "RdeUrbanNox": "58",
        },
        "TestWltpType1Group": {
            "WltpType1Co": "96.50",
            "WltpType1ThcNox": "48.70",
            "WltpType1Nox": "38.20",
            "WltpType1Particulates": "0.28",
            "WltpType1NumberOfParticles": "3.10",
            "WltpType1NumberOfParticlesExponent": "10",
        },
        **wltp_co2("20", *co2),
        "TestFamilyIdentifiersTable": families("AE5", 58, "IP", "RL", "ATCT", "PEMS"),
    }
    return table("EnergyConvertorGroup", combustion_engine(MUV, code, "INTCI", 4, capacity, source=source))


def rhino_construction(powered_axles: int, doors: int, seats: int) -> Tree:
    return {
        "NumberOfAxles": "2",
        "NumberOfWheels": "4",
        "NumberOfPoweredAxles": str(powered_axles),
        "NumberOfDoors": str(doors),
        "AutomatedVehicle": "NONAT",
        "NumberOfSeatingPositionsIncludingDriver": str(seats),
    }


RHINO = TypeSpec(
    manufacturer=MOPANI,
    number="e1*2018/858*00873*03",
    issue_date=RHINO_ISSUED,
    designated_country="e1",
    type="MR3P",
    category="N1",
    wmi="AE5",
    vehicle_group="RHINO",
    certificate=merged(common_certificate(MOPANI, "RHINO", RHINO_ISSUED), RHINO_BODY),
    variants=(
        VariantSpec(
            variant="MR3PS2",  # single cab, rear-wheel drive, 2.0 l
            certificate={
                "MaximumSpeed": "165",
                "GeneralConstructionGroup": rhino_construction(1, 2, 3),
                "DimensionGroup": {
                    "Wheelbase": "3095",
                    "Length": "5265",
                    "Width": "1785",
                    "Height": "1690",
                    "LengthLoadingArea": "2315",
                },
                "GearGroup": {"GearboxType": "M"},
                "ConfigurationDoorsGroup": {"NumberOfDoorsLeft": "1", "NumberOfDoorsRight": "1"},
            },
            versions=(
                VersionSpec(
                    version="MR3PS2-M6(3A)",
                    vds="RS2A6",
                    optional_equipment_kg=40,
                    certificate={
                        "MassGroup": masses(1780, 2900, 100),
                        "TowingBrakedTypeTrailTable": towing(2500, 750, 5400),
                        "AxleTable": axles(3095, (1540, 1550), (1350, 1850), "2", RHINO_CARGO_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(2010, "188.2", "0.512", "0.0489", 610),
                        "EnergyConvertorTable": rhino_diesel("MD20T", 1996, 110, (254, 205, 188, 236, 214)),
                    },
                ),
                VersionSpec(
                    version="MR3PS2-M6HD(3B)",  # heavy-duty rear springs
                    vds="RS2B6",
                    optional_equipment_kg=55,
                    certificate={
                        "MassGroup": masses(1815, 3100, 100),
                        "TowingBrakedTypeTrailTable": towing(2500, 750, 5600),
                        "AxleTable": axles(3095, (1540, 1550), (1380, 2050), "2", RHINO_CARGO_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(2096, "193.6", "0.538", "0.0494", 610),
                        "EnergyConvertorTable": rhino_diesel("MD20T", 1996, 110, (261, 209, 191, 240, 219)),
                    },
                ),
            ),
        ),
        VariantSpec(
            variant="MR3PD4",  # double cab, selectable four-wheel drive, 2.4 l
            certificate={
                "MaximumSpeed": "180",
                "GeneralConstructionGroup": rhino_construction(2, 4, 5),
                "DimensionGroup": {
                    "Wheelbase": "3095",
                    "Length": "5325",
                    "Width": "1855",
                    "Height": "1810",
                    "LengthLoadingArea": "1570",
                },
                "ConfigurationDoorsGroup": {"NumberOfDoorsLeft": "2", "NumberOfDoorsRight": "2"},
            },
            versions=(
                VersionSpec(
                    version="MR3PD4-M6(4A)",
                    vds="RD4A6",
                    optional_equipment_kg=70,
                    certificate={
                        "GearGroup": {"GearboxType": "M"},
                        "MassGroup": masses(2150, 3210, 140),
                        "TowingBrakedTypeTrailTable": towing(3500, 750, 6710),
                        "AxleTable": axles(3095, (1570, 1570), (1430, 1930), "12", RHINO_LEISURE_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(2365, "221.7", "0.604", "0.0547", 640),
                        "EnergyConvertorTable": rhino_diesel("MD24T", 2393, 150, (281, 226, 207, 258, 236)),
                    },
                ),
                VersionSpec(
                    version="MR3PD4-A6(4B)",
                    vds="RD4B6",
                    optional_equipment_kg=85,
                    certificate={
                        "GearGroup": {"GearboxType": "A"},
                        "MassGroup": masses(2210, 3210, 140),
                        "TowingBrakedTypeTrailTable": towing(3500, 750, 6710),
                        "AxleTable": axles(3095, (1570, 1570), (1450, 1930), "12", RHINO_LEISURE_TYRES),
                        "WltpEmissionTestParametersGroup": wltp_test(2428, "226.4", "0.619", "0.0553", 640),
                        "EnergyConvertorTable": rhino_diesel("MD24T", 2393, 150, (296, 233, 212, 263, 244)),
                    },
                ),
            ),
        ),
    ),
    pending_versions=(("MR3PD4", "MR3PD4-A6X(4C)"),),
)

TYPES: tuple[TypeSpec, ...] = (SPRINGBOK, SPRINGBOK_E, KUDU, RHINO)


# --- approvals ----------------------------------------------------------------------------------


def certificate(spec: TypeSpec, variant: VariantSpec, version: VersionSpec) -> Tree:
    """The version's certificate tree: the type's values, overlaid by the variant's and the version's."""
    return merged(merged(spec.certificate, variant.certificate), version.certificate)


def approval(spec: TypeSpec, variant: VariantSpec, version: VersionSpec) -> Approval:
    tree = certificate(spec, variant, version)
    running_order = int(tree["MassGroup"]["MassInRunningOrder"])
    return Approval(
        number=spec.number,
        issue_date=spec.issue_date,
        designated_country=spec.designated_country,
        type=spec.type,
        variant=variant.variant,
        version=version.version,
        category=spec.category,
        wmis=spec.manufacturer.wmis,
        # Actual mass: mass in running order plus this vehicle's optional equipment (domain.md).
        actual_mass_min_kg=running_order,
        actual_mass_max_kg=running_order + version.optional_equipment_kg,
        certificate=tree,
    )
