"""Sample multistage vehicle: a Ford Ranger chassis cab (stage 1, incomplete) completed by a body builder.

The data lives in ``devkit/data/multistage.json``: the approval of the chassis cab
built at Silverton (N1, StageOfCompletion I, its ManufacturerTable with stage 1)
and the approval of the completed vehicle, a dropside lorry a European body builder
makes of it (StageOfCompletion V, its ManufacturerTable restating stage 1 and adding
stage 2; the PreviousStage values left to each vehicle's base certificate).

``base_certificate`` stands in for the first-stage manufacturer: it renders and
seals one chassis cab's certificate with a seal of its own, the document the
authority gives the body builder. ``completed_build`` is the body builder's MES
record of the same vehicle, naming that certificate as its previous stage.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from devkit.samples import SAST, vin
from services.render.document import render
from services.signing.seal import Seal
from shared.contracts import Approval, ApprovalRef, BuildRecord, FittedTyre
from shared.contracts.builds import PreviousStage
from shared.ivi import IviSchema

DATA = Path(__file__).resolve().parent / "data" / "multistage.json"
BUILT_ON = dt.date(2026, 9, 14)  # the chassis cab at Silverton
COMPLETED_ON = dt.date(2026, 10, 27)  # the body fitted in Germany, some six weeks later


@dataclass(frozen=True)
class StageSpec:
    """One stage's approved version and where its vehicles are built."""

    approval: Approval
    plant: str
    vehicle_group: str
    optional_equipment_kg: int
    plant_code: str = ""
    vds: str = ""


@cache
def stages(path: Path = DATA) -> tuple[StageSpec, StageSpec]:
    """The chassis cab (stage 1) and the completed vehicle (stage 2), read once."""
    data = json.loads(path.read_text(encoding="utf-8"))
    first, second = (_stage(item) for item in data["stages"])
    return first, second


def _stage(item: dict[str, Any]) -> StageSpec:
    running_order = int(item["certificate"]["MassGroup"]["MassInRunningOrder"])
    approval = Approval(
        number=item["number"],
        issue_date=dt.date.fromisoformat(item["issue_date"]),
        designated_country=item["designated_country"],
        type=item["type"],
        variant=item["variant"],
        version=item["version"],
        category=item["category"],
        wmis=tuple(item["wmis"]),
        actual_mass_min_kg=running_order,
        actual_mass_max_kg=running_order + item["optional_equipment_kg"],
        certificate=item["certificate"],
    )
    return StageSpec(
        approval,
        item["plant"],
        item["vehicle_group"],
        item["optional_equipment_kg"],
        item.get("plant_code", ""),
        item.get("vds", ""),
    )


def approvals() -> tuple[Approval, Approval]:
    first, second = stages()
    return first.approval, second.approval


def _ref(approval: Approval) -> ApprovalRef:
    return ApprovalRef(
        number=approval.number, type=approval.type, variant=approval.variant, version=approval.version
    )


def chassis_build(serial: int = 40_217) -> BuildRecord:
    """The Silverton MES record of one chassis cab (stage 1)."""
    first = stages()[0]
    approval = first.approval
    assert approval.actual_mass_min_kg is not None
    return BuildRecord(
        vin=vin(approval.wmis[0], first.vds, BUILT_ON, first.plant_code, serial),
        build_id=f"{first.plant_code}{BUILT_ON:%y%m%d}-{serial:06d}",
        manufactured_on=BUILT_ON,
        plant=first.plant,
        vehicle_group=first.vehicle_group,
        approval=_ref(approval),
        intended_country="D",
        actual_mass_kg=approval.actual_mass_min_kg + 35,
        colours=("1",),
        tyres=(FittedTyre(axle=1, option=1), FittedTyre(axle=2, option=1)),
        released_at=dt.datetime.combine(BUILT_ON, dt.time(14, 5, 31, 418_000), tzinfo=SAST),
    )


def base_certificate(seal: Seal, schema: IviSchema, serial: int = 40_217) -> bytes:
    """The chassis cab's signed IVI 2.0 certificate, as its manufacturer issues it (stage 1, incomplete)."""
    build = chassis_build(serial)
    return seal.sign(render(build, stages()[0].approval, version_number=1, schema=schema))


def completed_build(previous: PreviousStage, build_id: str = "WD261027-0031") -> BuildRecord:
    """The body builder's MES record of the completed vehicle (stage 2), naming its base certificate."""
    second = stages()[1]
    approval = second.approval
    assert approval.actual_mass_min_kg is not None
    return BuildRecord(
        vin=previous.vin,  # the VIN stays through every stage
        build_id=build_id,
        manufactured_on=COMPLETED_ON,
        plant=second.plant,
        vehicle_group=second.vehicle_group,
        approval=_ref(approval),
        intended_country="D",
        actual_mass_kg=approval.actual_mass_min_kg + 20,
        colours=("1",),
        tyres=(FittedTyre(axle=1, option=1), FittedTyre(axle=2, option=1)),
        released_at=dt.datetime.combine(COMPLETED_ON, dt.time(10, 40, 2, 77_000), tzinfo=dt.UTC),
        previous_stage=previous,
    )
