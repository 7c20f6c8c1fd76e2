"""The readable certificate says what each code means, beside the code itself."""

from __future__ import annotations

import re

import pytest

from devkit.keys import CERT_FILE, KEY_FILE, write_dev_seal
from services.signing.seal import Seal
from services.workspace.evidence import readable
from shared.codes import decoded

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def shown(unsigned_specimen: bytes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    keys = tmp_path_factory.mktemp("seal")
    write_dev_seal(keys)
    seal = Seal.from_pem((keys / KEY_FILE).read_bytes(), (keys / CERT_FILE).read_bytes())
    return {
        label: value for section in readable(seal.sign(unsigned_specimen)) for label, value in section.rows
    }


def test_the_specimens_codes_read_with_their_meanings(shown: dict[str, str]) -> None:
    assert shown["Intended country registration"] == "NL — Netherlands"
    assert shown["Designated type approval country"] == "e6 — Belgium"
    assert shown["Right left hand traffic"] == "RIGHT — right-hand traffic"
    assert shown["Metric imperial speedometer"] == "M — metric"
    assert shown["Stage of completion"] == "C — complete vehicle"
    assert shown["Vehicle category"].startswith("M1 — passenger car")
    energy = {v for label, v in shown.items() if label.endswith("Energy source")}
    assert energy == {"10 — petrol", "95 — electricity"}, energy


def test_values_that_are_no_codes_or_codes_no_table_names_stay_as_they_are(shown: dict[str, str]) -> None:
    assert shown["Maximum speed"] == "175"
    assert decoded("IntendedCountryRegistration", "PAL") == "PAL"
    assert decoded("PureElectricVehicleIndicator", "N") == "N"
    assert decoded("IntendedCountryRegistration", "") == ""


def test_an_approval_page_shows_codes_with_their_meanings_and_its_history_in_sast() -> None:
    from devkit.samples import generate
    from services.workspace.identity import PersonRole
    from tests.unit.workspace.fakes import PEOPLE, T0, Site

    approval = generate(vehicles=1, seed=3, defect_share=0.0).approvals[0]
    site = Site()
    site.approvals.add(approval, T0, "type-approval")
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    page = site.client.get(f"/approvals/{approval.key}").text
    category = approval.category
    assert f"<dd>{category} — " in page, category
    assert "<td>10 — petrol</td>" in page
    assert '<time datetime="2026-12-01T09:00:00.000Z">1 Dec 2026, 11:00 SAST</time>' in page


def test_the_certificates_own_time_reads_in_the_plants_zone_beside_what_the_document_wrote(
    unsigned_specimen: bytes,
) -> None:
    from zoneinfo import ZoneInfo

    from services.workspace.words import when

    zone = ZoneInfo("Africa/Johannesburg")
    rows = {label: v for s in readable(unsigned_specimen, lambda t: when(t, zone)) for label, v in s.rows}
    shown = rows["IVI version date time"]
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d SAST \(written \d{4}-\d\d-\d\dT[^)]+\)", shown), (
        shown
    )
    plain = {label: v for s in readable(unsigned_specimen) for label, v in s.rows}
    assert shown.endswith(f"(written {plain['IVI version date time']})")
