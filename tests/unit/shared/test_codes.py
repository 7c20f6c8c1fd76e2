"""The code tables: every code one allows is allowed by the official schema, and each names its source."""

from __future__ import annotations

import pytest
from lxml import etree

from shared import codes
from shared.settings import CocSettings

pytestmark = pytest.mark.unit
XS = "{http://www.w3.org/2001/XMLSchema}"


def schema_enumerations() -> dict[str, set[str]]:
    root = etree.parse(str(CocSettings().xsd_path())).getroot()
    return {
        str(simple.get("name")): {str(e.get("value")) for e in simple.iter(f"{XS}enumeration")}
        for simple in root.iter(f"{XS}simpleType")
        if simple.get("name")
    }


def schema_element_types() -> dict[str, str]:
    root = etree.parse(str(CocSettings().xsd_path())).getroot()
    return {
        str(element.get("name")): str(element.get("type", "")).split(":")[-1]
        for element in root.iter(f"{XS}element")
        if element.get("name")
    }


@pytest.mark.parametrize("name", sorted(codes.tables()))
def test_every_code_of_a_table_is_one_the_official_schema_allows(name: str) -> None:
    table = codes.tables()[name]
    allowed = schema_enumerations()[table.xsd_type]
    assert allowed, f"{table.xsd_type} is no enumeration of the schema"
    assert set(table.codes) <= allowed, set(table.codes) - allowed


@pytest.mark.parametrize("name", sorted(codes.tables()))
def test_every_table_names_its_source_and_each_element_it_decodes_takes_its_codes(name: str) -> None:
    table = codes.tables()[name]
    assert len(table.source) > 20 and table.title
    enumerations, types = schema_enumerations(), schema_element_types()
    for element in table.elements:
        assert enumerations[types[element]] == enumerations[table.xsd_type], element


def test_the_codes_a_certificate_shows_read_as_their_meanings() -> None:
    assert codes.meaning("vienna_country", "D") == "Germany"
    assert codes.meaning("vienna_country", "UK") == "United Kingdom"
    assert codes.meaning("vienna_country", "ZA") == "South Africa"
    assert codes.meaning("energy_source", "95") == "electricity"
    assert codes.meaning("energy_source", "10") == "petrol"
    assert codes.meaning("traffic_side", "RIGHT") == "right-hand traffic"
    assert codes.meaning("metric_imperial", "M") == "metric"
    assert codes.meaning("stage_of_completion", "V") == "completed vehicle"
    assert codes.meaning("fuel_type", "M") == "mono fuel"
    assert codes.meaning("working_principle", "ELECT") == "electric"
    assert codes.meaning("vehicle_category", "M1").startswith("passenger car")  # type: ignore[union-attr]
    assert codes.meaning("type_approval_country", "e6") == "Belgium"


def test_a_code_no_table_names_has_no_meaning_and_an_unknown_table_is_a_mistake() -> None:
    assert codes.meaning("vienna_country", "XX") is None
    assert codes.meaning("bodywork", "DF") is None  # allowed by the schema, not named yet: shown alone
    with pytest.raises(KeyError):
        codes.meaning("no_such_table", "D")


def test_an_element_is_decoded_by_the_table_that_lists_it() -> None:
    assert codes.table_of("IntendedCountryRegistration").name == "vienna_country"  # type: ignore[union-attr]
    assert codes.table_of("MetricImperialSpeedometer").name == "metric_imperial"  # type: ignore[union-attr]
    assert codes.table_of("MaximumSpeed") is None


def test_a_value_shows_its_meaning_beside_the_code_wherever_its_element_sits() -> None:
    assert codes.decoded("IntendedCountryRegistration", "D") == "D — Germany"
    assert codes.decoded("CocDataGroup.PowerPlant[2].EnergySource", "95") == "95 — electricity"
    assert codes.decoded("EnergySource[1]", "10") == "10 — petrol"
    assert codes.decoded("MaximumSpeed", "175") == "175"
    assert codes.decoded("IntendedCountryRegistration", "PAL") == "PAL"
