"""Sample approval master data: two fictional South African manufacturers exporting to the EU.

The data lives in ``devkit/data/approvals.json`` (see ``devkit/data/README.md`` for where
its values come from); this module reads it into the specs the sample generator draws
from and turns each approved version into an :class:`Approval`.

Four approved types (a petrol hatchback, its battery-electric sister, a hybrid SUV, all
M1, and a diesel pick-up, N1), each with variants and versions. Every level carries the
part of the CocDataGroup it fixes, keyed by IVI 2.0 element names the way
``shared.contracts.approvals`` describes: a version's certificate is the type's tree,
overlaid by the variant's and then the version's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from shared.contracts import Approval

Tree = dict[str, Any]
DATA = Path(__file__).resolve().parent / "data" / "approvals.json"


@dataclass(frozen=True)
class Manufacturer:
    """The approval holder: its WMIs and the plant that builds for export."""

    make: str
    wmis: tuple[str, ...]
    plant: str  # plant name in the build record
    plant_code: str  # VIN position 11


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


@cache
def types(path: Path = DATA) -> tuple[TypeSpec, ...]:
    """The approved types of the data file, in its order (read once)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    makers = {
        make: Manufacturer(make, tuple(m["wmis"]), m["plant"], m["plant_code"])
        for make, m in data["manufacturers"].items()
    }
    return tuple(_type(item, makers) for item in data["types"])


def _type(item: Mapping[str, Any], makers: Mapping[str, Manufacturer]) -> TypeSpec:
    return TypeSpec(
        manufacturer=makers[item["manufacturer"]],
        number=item["number"],
        issue_date=dt.date.fromisoformat(item["issue_date"]),
        designated_country=item["designated_country"],
        type=item["type"],
        category=item["category"],
        wmi=item["wmi"],
        vehicle_group=item["vehicle_group"],
        certificate=item["certificate"],
        variants=tuple(
            VariantSpec(
                variant["variant"],
                variant["certificate"],
                tuple(
                    VersionSpec(v["version"], v["vds"], v["optional_equipment_kg"], v["certificate"])
                    for v in variant["versions"]
                ),
            )
            for variant in item["variants"]
        ),
        pending_versions=tuple((variant, version) for variant, version in item["pending_versions"]),
    )


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
