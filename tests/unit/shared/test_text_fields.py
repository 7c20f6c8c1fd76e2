"""Free text and people's names in contracts: no control characters, and names without markup."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from shared.contracts.base import reason_of
from shared.contracts.events import Decision, Review
from shared.contracts.policies import PolicyChange, ReleasePolicy
from shared.kafka import ContractError, parse_as

pytestmark = pytest.mark.unit


def review(**changed: str) -> Review:
    fields = {
        "vin": "AB7SH2D78VR061099",
        "revision": 1,
        "decision": Decision.REJECT,
        "reviewer": "Rita O'Neil",
    }
    return Review(**{**fields, "comment": "mass checked\nagain\twith the plant", **changed})  # type: ignore[arg-type]


def test_line_breaks_and_tabs_are_text_and_an_apostrophe_is_a_name() -> None:
    assert review().comment.startswith("mass checked\nagain")


@pytest.mark.parametrize("comment", ["a\x00b", "x\x1b[2Jy", "a\u2028b", "bidi\u202e"])
def test_a_comment_with_a_control_character_is_refused_naming_the_field(comment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        review(comment=comment)
    (error,) = caught.value.errors()
    assert error["loc"] == ("comment",) and reason_of(error).startswith("may not hold control characters")


@pytest.mark.parametrize("reviewer", ["<b>Forged Name</b>", "Ann\x1b[31m", 'Ann "the" Lead', "A & B"])
def test_a_persons_name_with_markup_or_control_characters_is_refused(reviewer: str) -> None:
    with pytest.raises(ValidationError, match="reviewer"):
        review(reviewer=reviewer)


def test_a_policy_change_from_kafka_with_an_escape_in_its_comment_is_a_contract_error_in_plain_words() -> (
    None
):
    change = PolicyChange(
        vehicle_group="KUDU", policy=ReleasePolicy.HOLD, set_by="C. Lead", set_at=dt.datetime.now(dt.UTC)
    )
    body = change.model_dump_json().replace('"comment":null', '"comment":"a\\u001bb"').encode()
    with pytest.raises(ContractError) as caught:
        parse_as(PolicyChange, body)
    assert str(caught.value) == "comment: may not hold control characters; found U+001B"
