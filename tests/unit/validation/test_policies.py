"""A vehicle group's release policy as data: the table of changes, the policy it makes, what it releases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from devkit.ivi_import import import_document
from services.validation.decide import Pending, When, decide, redecide
from services.validation.policy import CheckDigitMode, PolicyInForce, ReleasePolicy, RulePolicy
from services.validation.rules import ApprovalTable, check_digit
from services.validation.settings import ValidationSettings
from shared import topics
from shared.contracts import BuildRecord
from shared.contracts.events import State
from shared.contracts.policies import PolicyChange
from shared.ivi import IviSchema
from shared.kafka import wanted_topics
from shared.settings import CocSettings

pytestmark = pytest.mark.unit
NOON = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
NOW = When(at=NOON, today=NOON.date())
GROUP = "KUDU"


def change(policy: ReleasePolicy, minute: int = 0, group: str = GROUP, by: str = "C. Lead") -> PolicyChange:
    return PolicyChange(
        vehicle_group=group, policy=policy, set_by=by, set_at=NOON + dt.timedelta(minutes=minute)
    )


def environment(**groups: ReleasePolicy) -> RulePolicy:
    """The policy validation's settings give, as from COC_RELEASE_POLICY."""
    return ValidationSettings(release_policy=groups).policy()


# --- the contract and its topic ----------------------------------------------------------------


def test_a_policy_change_names_group_policy_person_and_time_and_refuses_anything_else() -> None:
    made = PolicyChange.model_validate_json(
        '{"vehicle_group": "KUDU", "policy": "hold", "set_by": "C. Lead", "set_at": "2026-11-26T12:00:00Z"}'
    )
    assert made == change(ReleasePolicy.HOLD) and made.schema_version == 1 and made.comment is None
    fields = PolicyChange.model_fields
    assert all(f.description for f in fields.values()), "every field feeds the AsyncAPI document"
    good = change(ReleasePolicy.AUTO).model_dump(mode="json")
    for broken in (
        {"vehicle_group": ""},
        {"vehicle_group": "G" * 65},
        {"set_by": ""},
        {"set_by": "x" * 129},
        {"policy": "maybe"},
        {"set_at": "2026-11-26T12:00:00"},  # no time zone
        {"comment": "x" * 2001},
        {"schema_version": 2},
        {"role": "compliance-lead"},
    ):
        with pytest.raises(ValidationError):
            PolicyChange.model_validate(good | broken)


def test_the_policies_topic_is_made_compacted_with_one_partition_like_the_approvals() -> None:
    settings = CocSettings(topic_partitions=6)
    made = {t.name: t for t in wanted_topics(settings)}
    assert topics.POLICIES in topics.ALL
    policies = made[topics.POLICIES]
    assert policies.num_partitions == 1
    assert policies.topic_configs["cleanup.policy"] == "compact"
    assert made[topics.APPROVALS].num_partitions == 1 and made[topics.ACCEPTED].num_partitions == 6
    assert made[topics.dlq(topics.POLICIES)].num_partitions == 6


# --- the effective policy ----------------------------------------------------------------------


def test_a_change_on_the_topic_beats_the_environment_and_leaves_other_groups_to_it() -> None:
    in_force = PolicyInForce(environment(KUDU=ReleasePolicy.HOLD, CHR=ReleasePolicy.REVIEW))
    assert in_force.policy_for(GROUP) is ReleasePolicy.HOLD

    assert in_force.apply(change(ReleasePolicy.AUTO)) is True

    assert in_force.policy_for(GROUP) is ReleasePolicy.AUTO
    assert in_force.policy_for("CHR") is ReleasePolicy.REVIEW
    assert in_force.policy_for("OTHER") is ReleasePolicy.AUTO  # the default release policy
    assert in_force.base.policy_for(GROUP) is ReleasePolicy.HOLD  # the environment's policy is kept


def test_the_newest_change_of_a_group_wins_whatever_order_they_come_in() -> None:
    in_force = PolicyInForce(environment())
    in_force.load([change(ReleasePolicy.REVIEW, 0), change(ReleasePolicy.HOLD, 5)])
    assert in_force.policy_for(GROUP) is ReleasePolicy.HOLD

    # The broadcast subscriber reads the topic again from its beginning: the older change comes by.
    assert in_force.apply(change(ReleasePolicy.REVIEW, 0)) is False
    assert in_force.policy_for(GROUP) is ReleasePolicy.HOLD

    assert in_force.apply(change(ReleasePolicy.AUTO, 9)) is True
    assert in_force.policy_for(GROUP) is ReleasePolicy.AUTO
    assert in_force.table.changes[GROUP].set_at == NOON + dt.timedelta(minutes=9)


def test_a_change_read_at_start_is_carried_out_once_when_the_subscriber_reads_it_again() -> None:
    """It may have been made while no validation ran: its group's records are decided once after a start."""
    newest = change(ReleasePolicy.AUTO, 5)
    in_force = PolicyInForce(environment(KUDU=ReleasePolicy.HOLD))
    in_force.load([change(ReleasePolicy.HOLD, 0), newest])
    assert in_force.policy_for(GROUP) is ReleasePolicy.AUTO  # in force before the subscriber reads anything

    assert in_force.apply(change(ReleasePolicy.HOLD, 0)) is False
    assert in_force.apply(newest) is True
    assert in_force.apply(newest) is False  # a repeat changes nothing


def test_combining_the_table_with_a_policy_gives_a_new_frozen_policy() -> None:
    base = RulePolicy(release_policy={"CHR": ReleasePolicy.REVIEW}, default_release_policy=ReleasePolicy.HOLD)
    combined = base.with_groups({GROUP: ReleasePolicy.AUTO, "CHR": ReleasePolicy.AUTO})
    assert (
        combined.policy_for(GROUP) is ReleasePolicy.AUTO and combined.policy_for("CHR") is ReleasePolicy.AUTO
    )
    assert combined.policy_for("OTHER") is ReleasePolicy.HOLD
    assert base.policy_for("CHR") is ReleasePolicy.REVIEW and GROUP not in base.release_policy
    with pytest.raises(TypeError):
        combined.release_policy["CHR"] = ReleasePolicy.HOLD  # type: ignore[index]


# --- deciding with the combined policy ---------------------------------------------------------

Specimen = tuple[ApprovalTable, BuildRecord]


@pytest.fixture(scope="module")
def specimen(specimen_bytes: bytes, xsd_path: Path) -> Specimen:
    """The specimen's approval and a clean build of group KUDU built to it."""
    schema = IviSchema.load(xsd_path)
    approval, build = import_document(specimen_bytes, schema)
    clean = build.model_copy(
        update={"vin": build.vin[:8] + check_digit(build.vin) + build.vin[9:], "vehicle_group": GROUP}
    )
    return ApprovalTable.of(schema, [approval]), clean


def test_decide_follows_the_topic_over_the_environment_for_the_changed_group(specimen: Specimen) -> None:
    approvals, build = specimen
    in_force = PolicyInForce(environment(KUDU=ReleasePolicy.HOLD))
    assert decide(build, approvals, in_force.policy, NOW).state is State.HELD

    in_force.apply(change(ReleasePolicy.AUTO))
    assert decide(build, approvals, in_force.policy, NOW).state is State.VALIDATED

    in_force.apply(change(ReleasePolicy.REVIEW, 1))
    reviewed = decide(build, approvals, in_force.policy, NOW)
    assert reviewed.state is State.NEEDS_REVIEW and [f.code for f in reviewed.findings] == ["GROUP_REVIEW"]
    other = build.model_copy(update={"vehicle_group": "CHR"})
    assert decide(other, approvals, in_force.policy, NOW).state is State.VALIDATED


# --- what a change releases --------------------------------------------------------------------


def under(policy: ReleasePolicy) -> RulePolicy:
    return environment(KUDU=ReleasePolicy.HOLD).with_groups({GROUP: policy})


def test_held_records_of_a_group_switched_to_auto_are_validated_with_their_approval(
    specimen: Specimen,
) -> None:
    approvals, build = specimen
    outcome = redecide(Pending(build, State.HELD), approvals, under(ReleasePolicy.AUTO), NOW)
    assert outcome is not None and outcome.state is State.VALIDATED and outcome.findings == ()
    assert outcome.validated is not None and outcome.validated.build == build


def test_held_records_of_a_group_switched_to_review_wait_for_a_reviewer(specimen: Specimen) -> None:
    approvals, build = specimen
    outcome = redecide(Pending(build, State.HELD), approvals, under(ReleasePolicy.REVIEW), NOW)
    assert outcome is not None and outcome.state is State.NEEDS_REVIEW and outcome.validated is None
    assert [f.code for f in outcome.findings] == ["GROUP_REVIEW"]


def test_records_waiting_for_a_group_review_go_on_when_the_group_is_switched_to_auto(
    specimen: Specimen,
) -> None:
    approvals, build = specimen
    outcome = redecide(Pending(build, State.NEEDS_REVIEW), approvals, under(ReleasePolicy.AUTO), NOW)
    assert outcome is not None and outcome.state is State.VALIDATED


@pytest.mark.parametrize("policy", list(ReleasePolicy))
def test_a_record_blocked_by_an_error_stays_blocked_whatever_the_policy(
    specimen: Specimen, policy: ReleasePolicy
) -> None:
    approvals, build = specimen
    heavy = build.model_copy(update={"actual_mass_kg": 99_999})
    assert redecide(Pending(heavy, State.BLOCKED), approvals, under(policy), NOW) is None
    # a reviewer's rejection blocks a clean build: no policy releases it either
    rejected = Pending(build, State.BLOCKED, reviewed_by="R. Reviewer")
    assert redecide(rejected, approvals, under(policy), NOW) is None


def test_a_switch_to_hold_pulls_back_no_record_already_validated(specimen: Specimen) -> None:
    approvals, build = specimen
    for state in (State.VALIDATED, State.RENDERED, State.ARCHIVED):
        assert redecide(Pending(build, state), approvals, under(ReleasePolicy.HOLD), NOW) is None


def test_a_record_whose_decision_the_change_does_not_alter_emits_nothing(specimen: Specimen) -> None:
    approvals, build = specimen
    assert redecide(Pending(build, State.HELD), approvals, under(ReleasePolicy.HOLD), NOW) is None
    # a warning still needs a reviewer once the group is released
    bad_check_digit = build.model_copy(update={"vin": build.vin[:8] + "X" + build.vin[9:]})
    warned = RulePolicy(check_digit=CheckDigitMode.WARN).with_groups({GROUP: ReleasePolicy.AUTO})
    outcome = decide(bad_check_digit, approvals, warned, NOW)
    assert outcome.state is State.NEEDS_REVIEW
    assert redecide(Pending(bad_check_digit, State.NEEDS_REVIEW), approvals, warned, NOW) is None
