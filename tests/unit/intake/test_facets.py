"""Intake holds each per-vehicle value to its IVI 2.0 element's facets, read from the schema, and names to an allow-list.

Refusals name the field: in the HTTP answer (422) and in the reason a dead letter keeps.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devkit.samples import generate
from services.intake import routes
from services.intake.acceptance import BodyError, parse_builds
from services.intake.facets import CERTIFICATE_VALUES, BuildFacets
from services.intake.settings import IntakeSettings
from shared.auth import Authenticator, Role
from shared.contracts import BuildRecord
from shared.contracts.base import NAME_PUNCTUATION
from shared.contracts.policies import PolicyChange
from shared.ivi import IviSchema
from shared.stage import Stage

pytestmark = pytest.mark.unit

TOKEN = "mes-token"
JSON = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
MARKUP = '"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def facets(schema: IviSchema) -> BuildFacets:
    return BuildFacets.of(schema)


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    return generate(1, seed=4, defect_share=0.0).builds[0].model_dump(mode="json")


@pytest.fixture
def client(facets: BuildFacets, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    async def forward(_emitter: Any, _record: Any) -> None:
        raise AssertionError("a refused build must not be forwarded")

    monkeypatch.setattr(routes, "forward", forward)
    app = FastAPI()
    stage = Stage("intake", IntakeSettings())
    app.include_router(routes.router(stage, Authenticator({Role.MES: TOKEN}), facets))
    return TestClient(app)


def refused(facets: BuildFacets, good: dict[str, Any], **change: Any) -> dict[str, str]:
    """field -> message of each facet the changed build breaks."""
    return dict(facets.problems(BuildRecord.model_validate({**good, **change})))


def test_the_facets_are_the_schemas_own_types_of_the_elements_the_values_fill(
    facets: BuildFacets, schema: IviSchema
) -> None:
    vin = facets.types["vin"]
    assert (vin.name, vin.min_length, vin.max_length) == ("VehicleIdentificationNumber", 17, 17)
    assert [p.pattern for p in vin.patterns] == ["[A-Z0-9]+"]
    assert facets.types["colours"].enumeration == frozenset(str(n) for n in range(1, 11))
    assert facets.types["actual_mass_kg"].maximum == 999_999
    for field, path in CERTIFICATE_VALUES.items():  # read from the XSD, not typed in
        assert facets.types[field] is schema.simple_type(schema.declaration(path))


def test_a_sample_build_keeps_every_facet(facets: BuildFacets, good: dict[str, Any]) -> None:
    assert facets.problems(BuildRecord.model_validate(good)) == []


def test_a_vin_of_18_characters_breaks_the_length_facet_naming_the_field(
    facets: BuildFacets, good: dict[str, Any]
) -> None:
    problems = refused(facets, good, vin=good["vin"] + "7")
    assert list(problems) == ["vin"] and "has 18 characters" in problems["vin"]
    assert "at most 17" in problems["vin"]


def test_a_vin_with_a_hyphen_breaks_the_pattern_facet_naming_the_field(
    facets: BuildFacets, good: dict[str, Any]
) -> None:
    problems = refused(facets, good, vin=good["vin"][:8] + "-" + good["vin"][9:])
    assert list(problems) == ["vin"] and "pattern [A-Z0-9]+" in problems["vin"]


def test_a_colour_and_a_country_outside_their_codes_break_the_enumeration_facet(
    facets: BuildFacets, good: dict[str, Any]
) -> None:
    problems = refused(facets, good, colours=["1", "12"], intended_country="XY")
    assert sorted(problems) == ["colours.1", "intended_country"]
    assert "not one of the ColourCode codes" in problems["colours.1"]
    assert "not one of the ViennaCountryCode codes" in problems["intended_country"]


def test_a_mass_above_the_integer6_bound_breaks_the_numeric_facet(
    facets: BuildFacets, good: dict[str, Any]
) -> None:
    problems = refused(facets, good, actual_mass_kg=1_000_000)
    assert problems == {"actual_mass_kg": "'1000000' is above the Integer6 maximum 999999 (IVI ActualMass)"}


def test_the_dead_letter_reason_names_each_field_in_one_line(
    facets: BuildFacets, good: dict[str, Any]
) -> None:
    reason = facets.reason(BuildRecord.model_validate({**good, "vin": "AB7", "colours": ["0"]}))
    assert reason is not None and "\n" not in reason
    assert reason.startswith("vin: 'AB7' has 3 characters") and "; colours.0: '0' is not one of" in reason


@pytest.mark.parametrize("field", ["plant", "vehicle_group", "build_id"])
@pytest.mark.parametrize("value", [MARKUP, "<script>alert(1)</script>", "A&B", "O'Neil", "tab\there"])
def test_a_name_outside_the_allow_list_breaks_the_contract_naming_the_field(
    good: dict[str, Any], field: str, value: str
) -> None:
    with pytest.raises(BodyError) as caught:
        parse_builds(json.dumps({**good, field: value}).encode(), "application/json")
    ((problem),) = caught.value.problems
    assert problem.field == field and "may hold only letters, digits, spaces" in problem.message


@pytest.mark.parametrize(
    "value", ["Győr (Body 2)", "C-HR", "D4-260706/0012", "e4*2018/858*00123*01", "Line 3: #2"]
)
def test_names_with_letters_digits_spaces_and_the_allowed_punctuation_are_taken(
    good: dict[str, Any], value: str
) -> None:
    (build,) = parse_builds(json.dumps({**good, "plant": value}).encode(), "application/json")
    assert build.plant == value
    assert not set("<>\"'&") & set(NAME_PUNCTUATION)


def test_a_release_policy_for_a_group_with_markup_is_refused() -> None:
    with pytest.raises(ValueError, match="vehicle_group"):
        PolicyChange.model_validate(
            {"vehicle_group": MARKUP, "policy": "auto", "set_by": "A", "set_at": "2026-12-07T10:00:00Z"}
        )


def test_markup_in_the_plant_is_a_422_naming_the_field_and_nothing_is_published(
    client: TestClient, good: dict[str, Any]
) -> None:
    answer = client.post("/v1/builds", content=json.dumps({**good, "plant": MARKUP}), headers=JSON)
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]["problems"]
    assert (problem["item"], problem["field"]) == (1, "plant")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"vin": "AB7SH1A67TR06891"}, "vin", "has 16 characters"),  # length
        ({"vin": "AB7SH1A67TR06891 "[:16] + "_"}, "vin", "pattern"),  # pattern
        ({"colours": ["11"]}, "colours.0", "not one of the ColourCode codes"),  # enumeration
    ],
)
def test_a_value_its_certificate_element_refuses_is_a_422_naming_the_field(
    client: TestClient, good: dict[str, Any], change: dict[str, Any], field: str, words: str
) -> None:
    second = {**good, **change}
    answer = client.post("/v1/builds", content=json.dumps([good, second]), headers=JSON)
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]["problems"]
    assert (problem["item"], problem["field"]) == (2, field) and words in problem["message"]
