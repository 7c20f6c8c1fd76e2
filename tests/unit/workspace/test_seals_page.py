"""The workspace's seals page: each approval holder's seal with its days to expiry, a warning from 30 days."""

from __future__ import annotations

import datetime as dt

import pytest

from devkit.seals import holder_seal
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
    assert "No seal is registered" in site.client.get("/seals").text
