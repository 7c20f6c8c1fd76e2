"""Validation's decisions: what happens to a record given its findings and its group's policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.validation.rules import ApprovalTable, check
from services.validation.settings import ReleasePolicy, RuleSettings
from shared.contracts import BuildRecord, Finding, Owner, Severity
from shared.contracts.events import State, ValidatedRecord

WAITING = frozenset({State.BLOCKED, State.NEEDS_REVIEW, State.HELD})


class ValidationServiceError(Exception):
    """Base error of the validation service."""


@dataclass(frozen=True)
class Outcome:
    state: State
    findings: tuple[Finding, ...]
    validated: ValidatedRecord | None = None


def decide(
    build: BuildRecord,
    table: ApprovalTable,
    settings: RuleSettings,
    today: dt.date,
    reviewed_by: str | None = None,
) -> Outcome:
    """Blocked on an error; else waiting for review or held as the group's policy says; else validated.

    A reviewer's acceptance (``reviewed_by``) settles warnings and the group's
    policy, never an error.
    """
    findings = tuple(check(build, table, settings, today))
    if any(f.severity is Severity.ERROR for f in findings):
        return Outcome(State.BLOCKED, findings)
    if reviewed_by is None:
        policy = settings.policy_for(build.vehicle_group)
        if findings or policy is ReleasePolicy.REVIEW:
            return Outcome(State.NEEDS_REVIEW, findings or (review_required(build),))
        if policy is ReleasePolicy.HOLD:
            return Outcome(State.HELD, (group_held(build),))
    approval = table.get(build.approval.key)
    assert approval is not None  # an unknown approval is an error finding
    record = ValidatedRecord(
        record_id=build.record_id, build=build, approval=approval, reviewed_by=reviewed_by
    )
    return Outcome(State.VALIDATED, (), record)


def review_required(build: BuildRecord) -> Finding:
    return Finding(
        code="GROUP_REVIEW",
        path="CocDataGroup",
        message=f"vehicle group {build.vehicle_group} is released by review: accept or reject this record",
        severity=Severity.WARNING,
        owner=Owner.COMPLIANCE,
    )


def group_held(build: BuildRecord) -> Finding:
    return Finding(
        code="GROUP_HELD",
        path="CocDataGroup",
        message=f"vehicle group {build.vehicle_group} is not yet released; a reviewer may release this record",
        severity=Severity.WARNING,
        owner=Owner.COMPLIANCE,
    )


def rejected_by_review(reviewer: str, comment: str) -> Finding:
    return Finding(
        code="REVIEW_REJECTED",
        path="CocDataGroup",
        message=f"rejected by {reviewer}: {comment or 'no reason given'}; correct the build and resend",
        severity=Severity.ERROR,
        owner=Owner.PRODUCTION,
    )
