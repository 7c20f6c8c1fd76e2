"""Intake's pure logic: what an MES sends is parsed, normalised and named, or refused field by field."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from devkit.samples import generate
from services.intake.acceptance import BodyError, accept, identity_of, key_mismatch, parse_builds

pytestmark = pytest.mark.unit
AT = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def builds_json() -> list[dict[str, object]]:
    return [json.loads(b.model_dump_json()) for b in generate(vehicles=3, seed=7, defect_share=0).builds]


def test_one_object_a_list_and_ndjson_give_the_same_builds(builds_json: list[dict[str, object]]) -> None:
    one = parse_builds(json.dumps(builds_json[0]).encode(), "application/json")
    many = parse_builds(json.dumps(builds_json).encode(), "application/json")
    lines = parse_builds("\n".join(json.dumps(b) for b in builds_json).encode(), "application/x-ndjson")
    assert [b.vin for b in many] == [b.vin for b in lines] == [str(b["vin"]) for b in builds_json]
    assert one == many[:1]


def test_a_broken_item_refuses_the_whole_request_naming_item_and_field(
    builds_json: list[dict[str, object]],
) -> None:
    broken = [builds_json[0], {**builds_json[1], "actual_mass_kg": "heavy"}]
    with pytest.raises(BodyError) as caught:
        parse_builds(json.dumps(broken).encode(), "application/json")
    assert [(p.item, p.field) for p in caught.value.problems] == [(2, "actual_mass_kg")]


def test_a_line_that_is_not_json_is_named_by_its_number() -> None:
    with pytest.raises(BodyError, match="item 2: \\(line\\): not valid JSON"):
        parse_builds(b'{"vin": "X"}\n{oops\n', "application/x-ndjson")


def test_an_accepted_record_is_named_vin_revision_and_released_when_received(
    builds_json: list[dict[str, object]],
) -> None:
    (build,) = parse_builds(json.dumps({**builds_json[0], "released_at": None}).encode(), "application/json")
    record = accept(build, AT)
    assert record.record_id == f"{build.vin}:{build.revision}"
    assert record.build.released_at == AT and record.received_at == AT


@pytest.mark.parametrize(
    ("body", "key", "identity"),
    [
        (b'{"vin": " wvw1 ", "revision": 3, "colours": 7}', "", ("WVW1", 3)),
        (b'{"vin": "WVW1"}', "", ("WVW1", 1)),
        (b'{"vin": "WVW1", "revision": -2}', "", ("WVW1", 0)),
        (b"not json", "wvw2", ("WVW2", 0)),
        (b"[1, 2]", "WVW3", ("WVW3", 0)),
        (b'{"vin": 12}', "wvw4", ("WVW4", 1)),
    ],
)
def test_a_broken_message_is_named_by_its_body_when_readable_else_by_its_key(
    body: bytes, key: str, identity: tuple[str, int]
) -> None:
    assert identity_of(body, key) == identity


def test_a_build_whose_vin_differs_from_its_key_is_refused_naming_both() -> None:
    build = generate(1, seed=3, defect_share=0.0).builds[0]
    assert key_mismatch(build, build.vin) is None
    assert key_mismatch(build, build.vin.lower()) is None  # VINs are compared in capitals
    assert key_mismatch(build, "") is None  # no key: nothing to compare
    reason = key_mismatch(build, "WVWZZZ1JZXW000001")
    assert (
        reason is not None
        and reason.startswith("vin:")
        and build.vin in reason
        and "WVWZZZ1JZXW000001" in reason
    )


def test_the_identity_of_json_nested_beyond_the_stack_comes_from_the_key() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert identity_of(deep, "wvw123") == ("WVW123", 0)
