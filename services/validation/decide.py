"""Validation's decisions: what happens to a record given its findings, its group's policy and its reviews.

Pure: the subscriber reads what is pending, calls these, and publishes what they return.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.validation.policy import ReleasePolicy, RulePolicy
from services.validation.rules import KnownApprovals, Placement, check
from shared.contracts import BuildRecord, Finding, Owner, Severity
from shared.contracts.events import Decision, Release, Review, Settlement, State, ValidatedRecord

WAITING = frozenset({State.BLOCKED, State.NEEDS_REVIEW, State.HELD})
# What a group's policy can keep a record in; a blocked record waits for a correction or an approval.
POLICY_WAITING = frozenset({State.NEEDS_REVIEW, State.HELD})


class ValidationServiceError(Exception):
    """Base error of the validation service."""


class NotWaiting(ValidationServiceError):
    """A review of a record that is not waiting for one (unknown, another revision, or already released)."""


@dataclass(frozen=True)
class Pending:
    """What validation remembers of a VIN: its newest revision, the decision on it, who reviewed it."""

    build: BuildRecord
    state: State
    reviewed_by: str | None = None
    settlement: Settlement | None = None  # the reviewer's acceptance, with comment and time

    @property
    def waiting(self) -> bool:
        return self.state in WAITING


@dataclass(frozen=True)
class When:
    """The moment a decision is taken: the instant (UTC), and the calendar day it is at the plant.

    A rule about a day (no date of manufacture in the future) compares with the
    plant's date, because the dates a build record states are the plant's: a
    vehicle made on the 27th in Johannesburg is made on a day that is still the
    26th in UTC until 22:00. The instant stamps the decision and the settlement.
    """

    at: dt.datetime
    today: dt.date

    @classmethod
    def at_plant(cls, instant: dt.datetime, zone: dt.tzinfo) -> When:
        """``instant`` (aware) as a decision's moment at a plant in time zone ``zone``."""
        return cls(at=instant.astimezone(dt.UTC), today=instant.astimezone(zone).date())


@dataclass(frozen=True)
class Outcome:
    state: State
    findings: tuple[Finding, ...]
    validated: ValidatedRecord | None = None


def decide(
    build: BuildRecord,
    table: KnownApprovals,
    policy: RulePolicy,
    when: When,
    reviewed_by: str | None = None,
    settlement: Settlement | None = None,
    moved_from: Placement | None = None,
) -> Outcome:
    """Blocked on an error; else waiting for review or held as the group's policy says; else validated.

    A reviewer's acceptance (``reviewed_by``, with its comment and time in
    ``settlement``) settles warnings and the group's policy, never an error.
    The validated record carries the release evidence: the policy in force and
    the findings the reviewer settled. ``moved_from``: the previous revision's
    group and plant where this one changes them (a warning for review).
    """
    findings = tuple(check(build, table, policy, when.today, moved_from))
    if any(f.severity is Severity.ERROR for f in findings):
        return Outcome(State.BLOCKED, findings)
    release = policy.policy_for(build.vehicle_group)
    if reviewed_by is None:
        if findings or release is ReleasePolicy.REVIEW:
            return Outcome(State.NEEDS_REVIEW, findings or (review_required(build),))
        if release is ReleasePolicy.HOLD:
            return Outcome(State.HELD, (group_held(build),))
    approval = table.get(build.approval.key)
    assert approval is not None  # an unknown approval is an error finding
    decided_at = when.at
    settled: tuple[Finding, ...] = ()
    if reviewed_by is not None:
        by_policy = {
            ReleasePolicy.REVIEW: (review_required(build),),
            ReleasePolicy.HOLD: (group_held(build),),
        }
        settled = findings + by_policy.get(release, ())
        settlement = settlement or Settlement(reviewer=reviewed_by, at=decided_at)
    record = ValidatedRecord(
        record_id=build.record_id,
        build=build,
        approval=approval,
        reviewed_by=reviewed_by,
        release=Release(
            policy=release.value,
            findings=settled,
            settled_by=settlement if reviewed_by is not None else None,
            decided_at=decided_at,
        ),
    )
    return Outcome(State.VALIDATED, (), record)


def redecide(
    pending: Pending,
    table: KnownApprovals,
    policy: RulePolicy,
    when: When,
    moved_from: Placement | None = None,
) -> Outcome | None:
    """The new decision on a waiting record after its group's policy changed; None when it stays as it is.

    Only held and needs-review records are decided again: a blocked one stays
    blocked whatever the policy (an error, or a reviewer's rejection), and a
    validated one is never pulled back. A record that still needs review for a
    warning, or is still held, keeps its decision and emits nothing.
    """
    if pending.state not in POLICY_WAITING:
        return None
    outcome = decide(pending.build, table, policy, when, pending.reviewed_by, pending.settlement, moved_from)
    return None if outcome.state is pending.state else outcome


def reviewed_build(pending: Pending | None, review: Review) -> BuildRecord:
    """The build a review decides on; NotWaiting unless that revision waits for a person.

    An acceptance needs a record that waits for a review (``needs_review``): a
    blocked one has an error no person can settle (it waits for a correction or
    an approval) and a held one waits for its group's release. A rejection may
    stop any waiting record, so that it stays blocked when what blocks it is cleared.
    """
    if pending is None or pending.build.revision != review.revision or not pending.waiting:
        raise NotWaiting(f"no record {review.vin}:{review.revision} is waiting for a review")
    if review.decision is Decision.ACCEPT and pending.state is not State.NEEDS_REVIEW:
        raise NotWaiting(
            f"no record {review.vin}:{review.revision} is waiting for a review: it is {pending.state.value}, "
            "and only a record that needs review can be accepted"
        )
    return pending.build


UNKNOWN_NAMES = frozenset({"GROUP_UNKNOWN", "PLANT_UNKNOWN"})


def names_unknown(outcome: Outcome) -> bool:
    """Whether the record waits for the compliance lead's master data (an unknown group or plant)."""
    return any(finding.code in UNKNOWN_NAMES for finding in outcome.findings)


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
