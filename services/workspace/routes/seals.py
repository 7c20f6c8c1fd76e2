"""Seals: each approval holder's seal in the registry (coc.seals.v1), with its days to expiry.

Integration keeps the registry (``coc seals add``); this page lists it for
everyone signed in, soonest expiry first, and marks each seal that expires
within 30 days (or has), so its renewal is planned before records wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from services.workspace.identity import PersonRole
from services.workspace.routes.answers import TEAMS, templates
from services.workspace.routes.deps import Parts, Time, Visitor
from shared.seal_table import EXPIRY_WARNING_DAYS, SealRow, SealTable

router = APIRouter(tags=["seals"])


def seal_table(ws: Parts) -> SealTable:
    return ws.seals


Seals = Annotated[SealTable, Depends(seal_table)]


@dataclass(frozen=True)
class SealsPage:
    rows: list[SealRow]
    warning_days: int


@router.get("/seals", response_class=HTMLResponse)
async def seals(request: Request, who: Visitor, table: Seals, clock: Time) -> HTMLResponse:
    """Every holder's newest seal registration, soonest expiry first, those within 30 days marked."""
    view = SealsPage(rows=table.rows(clock.now()), warning_days=EXPIRY_WARNING_DAYS)
    context = {
        "who": who,
        "teams": TEAMS,
        "roles": PersonRole,
        "rows": view.rows,
        "warning_days": view.warning_days,
    }
    return templates().TemplateResponse(request, "seals.html", context)
