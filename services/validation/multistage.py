"""Rules of multistage vehicles: complete (C), incomplete (I) and completed (V) records.

A vehicle built in stages keeps its VIN; each stage's certificate lists every
manufacturer so far in ``ManufacturerTable`` (numbered 1..N, this stage last),
and a later stage names the previous stage's approval number, type, variant and
version, read from the base vehicle's certificate (``BuildRecord.previous_stage``).

Sources: the IVI 2.0 schema (``StageOfCompletionCode`` C/I/V, ``ManufacturerGroup``
with ``ManufacturerStageNumber`` and the ``PreviousStage...`` elements); the EUCARIS
set-up manual on multistage vehicles ("the VIN stays; each stage changes at least one
of approval number, variant, version; later stages name the previous stage's approval
number, type, variant and version and restate whole tables", domain.md "Filling
rules"); Regulation (EU) 2018/858 Article 3 (incomplete, completed and complete
vehicles; multi-stage type-approval) for which stage may be which.

Findings about the approval's own table are owned by type-approval and worked
out once per approval (``master_findings``); findings about the build's previous
stage by production, whose MES sends it (``build_findings``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from services.validation.rules import ROOT, finding
from shared.contracts import Approval, BuildRecord, Finding, Owner
from shared.contracts.builds import PreviousStage
from shared.ivi import FROM_PREVIOUS_STAGE

TABLE = f"{ROOT}/ManufacturerTable"


def groups_of(approval: Approval) -> list[Mapping[str, Any]]:
    """The approval's ManufacturerGroups in the order it lists them."""
    table = approval.certificate.get("ManufacturerTable")
    items = table.get("ManufacturerGroup") if isinstance(table, Mapping) else None
    if isinstance(items, Mapping):
        items = [items]
    return [item for item in items or [] if isinstance(item, Mapping)]


def stage_number(group: Mapping[str, Any]) -> int | None:
    try:
        return int(str(group.get("ManufacturerStageNumber", "")).strip())
    except ValueError:
        return None


def this_stage(approval: Approval) -> int | None:
    """The stage the approval's vehicles are at: the number of its last ManufacturerGroup."""
    groups = groups_of(approval)
    return stage_number(groups[-1]) if groups else None


def group_path(index: int) -> str:
    return f"{TABLE}/ManufacturerGroup[{index}]"


# --- the approval's own table -----------------------------------------------------------------


def master_findings(approval: Approval) -> Iterator[Finding]:
    """The ManufacturerTable's numbering and the stage of completion, per approval (type-approval's)."""
    yield from stages_numbered(approval)
    yield from completion_fits_stage(approval)
    yield from first_stage_names_no_previous(approval)


def stages_numbered(approval: Approval) -> Iterator[Finding]:
    """ManufacturerStageNumber runs 1..N without gaps, in order, the last group being this stage.

    A later stage restates every earlier stage's group (set-up manual: later stages
    restate whole tables), so a stage-2 table lists stage 1 and then stage 2.
    """
    for index, group in enumerate(groups_of(approval), start=1):
        number = stage_number(group)
        if number != index:
            yield finding(
                "MANUFACTURER_STAGES_GAP",
                f"{group_path(index)}/ManufacturerStageNumber",
                f"ManufacturerGroup {index} states stage {group.get('ManufacturerStageNumber', 'none')}; the "
                f"table numbers its stages 1..N without gaps, each earlier stage restated (expected {index}) "
                f"in approval {approval.number} version {approval.version}",
                Owner.TYPE_APPROVAL,
            )
            return  # one finding says it: the numbers after a gap are off by the same cause


def completion_fits_stage(approval: Approval) -> Iterator[Finding]:
    """Stage 1 is complete (C) or incomplete (I); a later stage completed (V) or still incomplete (I).

    IVI 2.0 StageOfCompletionCode; Regulation (EU) 2018/858 Article 3: a completed
    vehicle results from a multi-stage process, so it is never the first stage.
    """
    stage, completion = this_stage(approval), approval.certificate.get("StageOfCompletion")
    if stage is None or completion is None:
        return  # a missing table or element is the schema check's finding
    allowed = ("C", "I") if stage == 1 else ("V", "I")
    if completion not in allowed:
        yield finding(
            "STAGE_OF_COMPLETION_INCONSISTENT",
            f"{ROOT}/StageOfCompletion",
            f"StageOfCompletion {completion} does not fit stage {stage} of the ManufacturerTable: stage "
            f"{stage} is {' or '.join(allowed)}; correct approval {approval.number} version {approval.version}",
            Owner.TYPE_APPROVAL,
        )


def first_stage_names_no_previous(approval: Approval) -> Iterator[Finding]:
    """A first stage has no previous stage: its group states none of the PreviousStage elements (set-up manual)."""
    groups = groups_of(approval)
    if len(groups) != 1 or stage_number(groups[0]) != 1:
        return
    named = [element for element in FROM_PREVIOUS_STAGE if element in groups[0]]
    if named:
        yield finding(
            "PREVIOUS_STAGE_AT_FIRST_STAGE",
            f"{group_path(1)}/{named[0]}",
            f"stage 1 names a previous stage ({', '.join(named)}); remove it from approval "
            f"{approval.number} version {approval.version}",
            Owner.TYPE_APPROVAL,
        )


# --- the build's previous stage ---------------------------------------------------------------


def build_findings(build: BuildRecord, approval: Approval | None) -> Iterator[Finding]:
    """The build's previous stage against its approval's stage (production's and type-approval's)."""
    if approval is None:
        return
    stage = this_stage(approval)
    if stage is None:
        return
    previous = build.previous_stage
    if stage == 1:
        yield from _no_previous_at_first_stage(build, previous)
        return
    if previous is None:
        yield finding(
            "PREVIOUS_STAGE_MISSING",
            f"{group_path(stage)}/PreviousStageTypeApprovalNumber",
            f"approval {approval.number} is stage {stage} of a multistage vehicle: the build record names "
            "the base vehicle's certificate (previous_stage); import it (`coc ivi import --base`) and send "
            "its facts with the build",
            Owner.PRODUCTION,
        )
        return
    yield from same_vin(build, previous)
    yield from previous_stage_number(stage, previous)
    yield from previous_stage_agrees(approval, stage, previous)
    yield from stage_changes_something(approval, previous)
    yield from earlier_stage_restated(approval, stage, previous)


def _no_previous_at_first_stage(build: BuildRecord, previous: PreviousStage | None) -> Iterator[Finding]:
    if previous is not None:
        yield finding(
            "PREVIOUS_STAGE_UNEXPECTED",
            f"{group_path(1)}/PreviousStageTypeApprovalNumber",
            f"the approval is stage 1, which builds on no earlier stage, but the build record names base "
            f"certificate {previous.reference_id}; send it without previous_stage or correct the approval",
            Owner.PRODUCTION,
        )


def same_vin(build: BuildRecord, previous: PreviousStage) -> Iterator[Finding]:
    """A multistage vehicle keeps its VIN through every stage (set-up manual; domain.md)."""
    if previous.vin != build.vin:
        yield finding(
            "PREVIOUS_STAGE_VIN",
            f"{ROOT}/VehicleIdentificationNumber",
            f"the base certificate {previous.reference_id} is of VIN {previous.vin}, this build of "
            f"{build.vin}: the VIN stays through every stage; name the base certificate of this vehicle",
            Owner.PRODUCTION,
        )


def previous_stage_number(stage: int, previous: PreviousStage) -> Iterator[Finding]:
    """Stage N completes stage N-1: the base certificate's last stage is the one before this."""
    if previous.stage != stage - 1:
        yield finding(
            "PREVIOUS_STAGE_NUMBER",
            f"{group_path(stage)}/ManufacturerStageNumber",
            f"the base certificate {previous.reference_id} is stage {previous.stage}, but this approval is "
            f"stage {stage} and builds on stage {stage - 1}; name the right base certificate",
            Owner.PRODUCTION,
        )


def previous_stage_agrees(approval: Approval, stage: int, previous: PreviousStage) -> Iterator[Finding]:
    """The approval's PreviousStage values, where it fixes them, are the base certificate's (set-up manual).

    Where the approval leaves them out, render takes them from ``previous_stage``,
    read from the base certificate itself (shared.ivi.FROM_PREVIOUS_STAGE).
    """
    last = groups_of(approval)[-1]
    for element, attribute in FROM_PREVIOUS_STAGE.items():
        fixed, actual = last.get(element), getattr(previous, attribute)
        if fixed is not None and str(fixed).strip() != actual:
            yield finding(
                "PREVIOUS_STAGE_DIFFERS",
                f"{group_path(stage)}/{element}",
                f"approval {approval.number} version {approval.version} states {element} {fixed}, the base "
                f"certificate {previous.reference_id} {actual}: the approval is for another base vehicle, "
                "or the build names the wrong base certificate",
                Owner.TYPE_APPROVAL,
            )


def stage_changes_something(approval: Approval, previous: PreviousStage) -> Iterator[Finding]:
    """Each stage changes at least one of approval number, variant, version (set-up manual)."""
    same = (approval.number, approval.variant, approval.version) == (
        previous.approval_number,
        previous.variant,
        previous.version,
    )
    if same:
        yield finding(
            "STAGE_NOT_CHANGED",
            f"{ROOT}/TypeApprovalNumber",
            f"approval number {approval.number}, variant {approval.variant} and version {approval.version} are "
            "the base vehicle's: a later stage changes at least one of them",
            Owner.TYPE_APPROVAL,
        )


def earlier_stage_restated(approval: Approval, stage: int, previous: PreviousStage) -> Iterator[Finding]:
    """The restated group of the previous stage names the base certificate's manufacturer (set-up manual)."""
    groups = groups_of(approval)
    if not previous.manufacturer or len(groups) < stage or stage < 2:
        return
    restated = str(groups[stage - 2].get("ManufacturerName", "")).strip()
    if restated.casefold() != previous.manufacturer.strip().casefold():
        yield finding(
            "PREVIOUS_STAGE_NOT_RESTATED",
            f"{group_path(stage - 1)}/ManufacturerName",
            f"stage {stage - 1} is restated as {restated or 'no manufacturer'}, but the base certificate names "
            f"{previous.manufacturer}: later stages restate the earlier stages' groups as they were",
            Owner.TYPE_APPROVAL,
        )
