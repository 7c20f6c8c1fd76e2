"""The workspace's seals page: each approval holder's seal with its days to expiry, a warning from 30 days."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from devkit.seals import holder_seal
from services.signing.routes import facts
from services.signing.seal import Seal
from services.workspace.identity import PersonRole
from shared.contracts.seals import SealRegistration
from tests.unit.workspace.fakes import PEOPLE, Site

pytestmark = pytest.mark.unit


def registered(holder: str, days: int, now: dt.datetime) -> SealRegistration:
    return SealRegistration(
        holder=holder,
        certificate_pem=holder_seal(holder, days=days, now=now).cert_pem.decode(),
        pkcs11_key=f"{holder[:5].lower()}-seal",
        set_by="integration tester",
        set_at=dt.datetime.now(dt.UTC),
    )


def test_the_seals_page_lists_each_holders_seal_with_days_to_expiry_and_marks_one_within_thirty_days() -> (
    None
):
    site = Site()
    now = site.clock.now()
    site.seals.add(registered("KAROO MOTOR WORKS (PTY) LTD", 12, now))
    site.seals.add(registered("MOPANI UTILITY VEHICLES (PTY) LTD", 300, now))
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    page = site.client.get("/seals")
    assert page.status_code == 200
    html = page.text
    karoo = html[html.index('data-holder="KAROO') : html.index('data-holder="MOPANI')]
    mopani = html[html.index('data-holder="MOPANI') :]
    assert "data-expiring" in karoo and "renew it now" in karoo
    first = mopani.split("</tr>")[0]
    assert "data-expiring" not in first and "<td data-days>299</td>" in first
    assert "<td data-days>11 " in karoo
    assert "token key karoo-seal" in karoo
    assert '<a href="/seals">Seals</a>' in html


def test_the_seals_page_says_when_no_seal_is_registered() -> None:
    site = Site()
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    assert "No holder's own seal is registered" in site.client.get("/seals").text


def signing_answer(holder: str | None, days: int, now: dt.datetime) -> dict[str, Any]:
    """What signing's GET /v1/seal answers for a development seal valid ``days`` more days."""
    made = holder_seal(holder or "PLANT", days=days, now=now)
    seal = Seal.from_pem(made.key_pem, made.cert_pem)
    return facts(seal, holder, "file /state/seal/seal.key")


def test_a_one_holder_installation_shows_the_settings_seal_serving_every_holder_without_a_registration() -> (
    None
):
    site = Site()
    answer = signing_answer(None, 400, site.clock.now())
    site.api.seal_answer = answer
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    html = site.client.get("/seals").text
    row = html[html.index("data-settings-seal") :].split("</tr>")[0]
    assert "The settings' seal" in row
    assert "serves every holder without a registered seal" in row
    assert answer["fingerprint"] in row and f"<code>{answer['serial']}</code>" in row
    assert answer["subject"] in row and "file /state/seal/seal.key" in row
    assert "<td data-days>399</td>" in row and "data-expiring" not in row
    assert "No holder's own seal is registered" in html


def test_the_settings_seal_names_the_holder_it_serves_and_is_marked_within_thirty_days() -> None:
    site = Site()
    now = site.clock.now()
    site.api.seal_answer = signing_answer("KAROO MOTOR WORKS (PTY) LTD", 10, now)
    site.seals.add(registered("MOPANI UTILITY VEHICLES (PTY) LTD", 300, now))
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    html = site.client.get("/seals").text
    row = html[html.index("data-settings-seal") :].split("</tr>")[0]
    assert "serves KAROO MOTOR WORKS (PTY) LTD, unless a seal of its own is registered" in row
    assert "data-expiring" in row and "renew it now" in row and "<td data-days>9 " in row
    assert html.index("data-settings-seal") < html.index('data-holder="MOPANI')


def test_when_signing_does_not_answer_the_registered_seals_are_still_listed_and_the_page_says_so() -> None:
    site = Site()
    site.seals.add(registered("MOPANI UTILITY VEHICLES (PTY) LTD", 300, site.clock.now()))
    site.api.down = True
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    page = site.client.get("/seals")
    assert page.status_code == 200
    assert 'role="alert">Signing did not answer' in page.text and "data-settings-seal" not in page.text
    assert 'data-holder="MOPANI' in page.text


def test_an_answer_of_signing_without_its_facts_is_shown_as_a_problem_not_a_row() -> None:
    site = Site()
    site.api.seal_answer = {"holder": None, "subject": "CN=x", "not_after": "not a time"}
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    html = site.client.get("/seals").text
    assert "data-settings-seal" not in html and "no usable" in html
