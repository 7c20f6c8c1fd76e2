"""Validation's decision per record: the state a record goes to, given its findings and its group's policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from devkit.ivi_import import import_document
from services.validation.decide import NotWaiting, Pending, When, decide, reviewed_build
from services.validation.policy import CheckDigitMode, ReleasePolicy, RulePolicy
from services.validation.rules import ApprovalTable, check_digit
from services.validation.settings import ValidationSettings
from shared.contracts import Approval, BuildRecord, Owner
from shared.contracts.events import Decision, Review, State
from shared.ivi import IviSchema

pytestmark = pytest.mark.unit
NOW = When(at=dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC), today=dt.date(2026, 11, 26))
Specimen = tuple[ApprovalTable, Approval, BuildRecord]


@pytest.fixture(scope="module")
def specimen(specimen_bytes: bytes, xsd_path: Path) -> Specimen:
    schema = IviSchema.load(xsd_path)
    approval, build = import_document(specimen_bytes, schema)
    return ApprovalTable.of(schema, [approval]), approval, build


def rules(**policy: ReleasePolicy) -> RulePolicy:
    return RulePolicy(release_policy=policy, check_digit=CheckDigitMode.WARN)


def with_wrong_check_digit(build: BuildRecord) -> BuildRecord:
    vin = build.vin
    return build.model_copy(update={"vin": vin[:8] + ("1" if check_digit(vin) != "1" else "2") + vin[9:]})


def test_a_clean_record_of_an_auto_group_is_validated_with_its_approval(specimen: Specimen) -> None:
    table, approval, build = specimen
    build = build.model_copy(update={"vin": build.vin[:8] + check_digit(build.vin) + build.vin[9:]})
    outcome = decide(build, table, rules(), NOW)
    assert outcome.state is State.VALIDATED and outcome.findings == ()
    assert outcome.validated is not None
    assert outcome.validated.approval == approval and outcome.validated.build == build


@pytest.mark.parametrize(
    ("policy", "state", "code"),
    [
        (ReleasePolicy.REVIEW, State.NEEDS_REVIEW, "GROUP_REVIEW"),
        (ReleasePolicy.HOLD, State.HELD, "GROUP_HELD"),
    ],
)
def test_the_group_policy_stops_a_clean_record_until_a_reviewer_releases_it(
    specimen: Specimen, policy: ReleasePolicy, state: State, code: str
) -> None:
    table, _, build = specimen
    build = build.model_copy(update={"vin": build.vin[:8] + check_digit(build.vin) + build.vin[9:]})
    stopped = decide(build, table, rules(**{build.vehicle_group: policy}), NOW)
    assert stopped.state is state and stopped.validated is None
    assert [(f.code, f.owner) for f in stopped.findings] == [(code, Owner.COMPLIANCE)]
    released = decide(build, table, rules(**{build.vehicle_group: policy}), NOW, reviewed_by="r. reviewer")
    assert released.state is State.VALIDATED and released.validated is not None
    assert released.validated.reviewed_by == "r. reviewer"
    other_group = build.model_copy(update={"vehicle_group": build.vehicle_group + "-X"})
    assert decide(other_group, table, rules(**{build.vehicle_group: policy}), NOW).state is State.VALIDATED


def test_a_warning_waits_for_review_even_in_an_auto_group(specimen: Specimen) -> None:
    table, _, build = specimen
    outcome = decide(with_wrong_check_digit(build), table, rules(), NOW)
    assert outcome.state is State.NEEDS_REVIEW and outcome.validated is None
    assert [f.code for f in outcome.findings] == ["VIN_CHECK_DIGIT"]
    accepted = decide(with_wrong_check_digit(build), table, rules(), NOW, reviewed_by="r. reviewer")
    assert accepted.state is State.VALIDATED


def test_an_error_blocks_and_no_reviewer_can_release_it(specimen: Specimen) -> None:
    table, _, build = specimen
    heavy = build.model_copy(update={"actual_mass_kg": 99_999})
    for reviewed_by in (None, "r. reviewer"):
        outcome = decide(heavy, table, rules(), NOW, reviewed_by=reviewed_by)
        assert outcome.state is State.BLOCKED and outcome.validated is None
        assert "ACTUAL_MASS_OUT_OF_RANGE" in [f.code for f in outcome.findings]


def review(build: BuildRecord, revision: int | None = None) -> Review:
    return Review(
        vin=build.vin, revision=revision or build.revision, decision=Decision.ACCEPT, reviewer="A. Reviewer"
    )


def test_an_acceptance_decides_on_the_revision_that_needs_review(specimen: Specimen) -> None:
    _, _, build = specimen
    assert reviewed_build(Pending(build, State.NEEDS_REVIEW), review(build)) == build


@pytest.mark.parametrize("state", [State.BLOCKED, State.HELD])
def test_a_blocked_or_held_record_cannot_be_accepted_but_may_be_rejected(
    specimen: Specimen, state: State
) -> None:
    _, _, build = specimen
    with pytest.raises(NotWaiting, match=f"it is {state.value}, and only a record that needs review"):
        reviewed_build(Pending(build, state), review(build))
    rejection = review(build).model_copy(update={"decision": Decision.REJECT, "comment": "wrong plate"})
    assert reviewed_build(Pending(build, state), rejection) == build


@pytest.mark.parametrize("state", [State.VALIDATED, State.RECEIVED])
def test_a_review_of_a_record_not_waiting_is_refused_with_its_identity(
    specimen: Specimen, state: State
) -> None:
    _, _, build = specimen
    with pytest.raises(NotWaiting, match=f"no record {build.vin}:{build.revision} is waiting"):
        reviewed_build(Pending(build, state), review(build))


def test_a_review_of_another_revision_or_an_unknown_vin_is_refused(specimen: Specimen) -> None:
    _, _, build = specimen
    with pytest.raises(NotWaiting, match=f":{build.revision + 1} is waiting"):
        reviewed_build(Pending(build, State.NEEDS_REVIEW), review(build, build.revision + 1))
    with pytest.raises(NotWaiting):
        reviewed_build(None, review(build))


def test_the_settings_give_the_rules_a_frozen_policy_with_the_same_choices() -> None:
    settings = ValidationSettings(
        check_digit=CheckDigitMode.WARN,
        check_digit_by_wmi={"1FA": CheckDigitMode.ERROR},
        release_policy={"KUDU": ReleasePolicy.HOLD},
    )
    policy = settings.policy()
    assert policy.check_digit_mode("1FA") is CheckDigitMode.ERROR
    assert policy.check_digit_mode("JTA") is CheckDigitMode.WARN
    assert policy.policy_for("KUDU") is ReleasePolicy.HOLD and policy.policy_for("CHR") is ReleasePolicy.AUTO
    with pytest.raises(TypeError):
        policy.release_policy["CHR"] = ReleasePolicy.REVIEW  # type: ignore[index]


def test_a_decisions_day_is_the_plants_calendar_day_and_its_instant_is_kept_in_utc() -> None:
    from zoneinfo import ZoneInfo

    plant = ZoneInfo("Africa/Johannesburg")
    late = dt.datetime(2026, 11, 26, 23, 30, tzinfo=plant)  # 21:30 UTC
    assert When.at_plant(late, plant) == When(
        at=dt.datetime(2026, 11, 26, 21, 30, tzinfo=dt.UTC), today=NOW.today
    )
    after_midnight = dt.datetime(2026, 11, 26, 22, 30, tzinfo=dt.UTC)
    assert When.at_plant(after_midnight, plant).today == dt.date(2026, 11, 27)
    assert When.at_plant(after_midnight, dt.UTC).today == dt.date(2026, 11, 26)
    assert When.at_plant(after_midnight, plant).at.utcoffset() == dt.timedelta(0)
