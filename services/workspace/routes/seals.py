"""Seals: the settings' seal of signing, and each approval holder's seal in the registry (coc.seals.v1).

Integration keeps the registry (``coc seals add``); signing's settings name one
more seal (COC_SEAL_KEY/COC_SEAL_CERT or a token key), which is on no topic:
the page asks signing for its certificate's public facts (``GET /v1/seal``;
the workspace never opens a key). It lists them for everyone signed in, the
settings' seal first, then the registered ones soonest expiry first, and marks
each seal that expires within 30 days (or has), so its renewal is planned
before records wait.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from services.workspace.adapters.pipeline import PipelineUnavailable
from services.workspace.identity import PersonRole
from services.workspace.routes.answers import TEAMS, templates
from services.workspace.routes.deps import Parts, Pipeline, Reads, Time, Visitor
from shared.seal_table import EXPIRY_WARNING_DAYS, SealRow, SealTable

router = APIRouter(tags=["seals"])
FACT_MAX = 1024  # a subject, serial, fingerprint or key as signing names them


def seal_table(ws: Parts) -> SealTable:
    return ws.seals


Seals = Annotated[SealTable, Depends(seal_table)]


@dataclass(frozen=True)
class SettingsSeal:
    """Signing's own seal as the page shows it: whom it serves, its certificate's facts, its days to expiry."""

    holder: str | None  # COC_SEAL_HOLDER; None: every holder without a registered seal
    key: str
    subject: str
    serial: str
    fingerprint: str
    not_after: dt.datetime
    days_left: int

    @property
    def warning(self) -> bool:
        return self.days_left <= EXPIRY_WARNING_DAYS


def settings_seal(found: dict[str, Any], now: dt.datetime) -> SettingsSeal:
    """The page's row from signing's answer; ``PipelineUnavailable`` when the answer is not one."""

    def text(name: str) -> str:
        value = found.get(name)
        if not isinstance(value, str) or not value or len(value) > FACT_MAX:
            raise PipelineUnavailable(f"signing's seal answer has no usable {name}")
        return value

    holder = found.get("holder")
    try:
        not_after = dt.datetime.fromisoformat(text("not_after"))
    except ValueError:
        raise PipelineUnavailable("signing's seal answer has no usable not_after") from None
    if not_after.tzinfo is None:
        raise PipelineUnavailable("signing's seal answer has no usable not_after")
    return SettingsSeal(
        holder=holder if isinstance(holder, str) and 0 < len(holder) <= FACT_MAX else None,
        key=text("key"),
        subject=text("subject"),
        serial=text("serial"),
        fingerprint=text("fingerprint"),
        not_after=not_after,
        days_left=(not_after - now).days,
    )


async def read_settings_seal(api: Pipeline, reads: Reads, now: dt.datetime) -> SettingsSeal | None:
    async def ask() -> SettingsSeal | None:
        found = await api.settings_seal()
        return None if found is None else settings_seal(found, now)

    return await reads.read(ask(), None)


@dataclass(frozen=True)
class SealsPage:
    own: SettingsSeal | None
    rows: list[SealRow]
    warning_days: int


@router.get("/seals", response_class=HTMLResponse)
async def seals(
    request: Request, who: Visitor, table: Seals, clock: Time, api: Pipeline, reads: Reads
) -> HTMLResponse:
    """The settings' seal, then every holder's newest seal registration, soonest expiry first; within 30 days marked."""
    now = clock.now()
    view = SealsPage(
        own=await read_settings_seal(api, reads, now),
        rows=table.rows(now),
        warning_days=EXPIRY_WARNING_DAYS,
    )
    context = {
        "who": who,
        "teams": TEAMS,
        "roles": PersonRole,
        "own": view.own,
        "rows": view.rows,
        "warning_days": view.warning_days,
        "problem": reads.problem,
    }
    return templates().TemplateResponse(request, "seals.html", context)
