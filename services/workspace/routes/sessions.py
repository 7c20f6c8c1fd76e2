"""A person's own sessions: where they are signed in, and ending one (a lost laptop, a shared screen).

A person sees and ends only their own sessions; the form carries the CSRF
token. Ending the session the page was asked in is signing out.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from services.workspace.routes.answers import redirect, render, see_other
from services.workspace.routes.deps import SESSION_COOKIE, Anyone, Sessions, Settings, Time, Visitor
from services.workspace.routes.views import SessionsPage

router = APIRouter(tags=["sessions"])
_KEY = re.compile(r"[0-9a-f]{64}")


@router.get("/sessions", response_class=HTMLResponse)
async def own_sessions(
    request: Request, who: Visitor, kept: Sessions, config: Settings, clock: Time
) -> HTMLResponse:
    found = await kept.of(who.person.name, clock.now())
    idle, lifetime = config.session_idle_minutes, config.session_hours
    page = SessionsPage(found, who.session.key, f"{idle:g} minutes", f"{lifetime:g} hours")
    return render(request, who, page)


@router.post("/sessions/end", **redirect("Ended: back to the list, or to the sign-in page for this one"))
async def end_session(
    who: Anyone, kept: Sessions, session: Annotated[str, Form(max_length=64)] = ""
) -> Response:
    if not _KEY.fullmatch(session) or not await kept.end(session, who.person.name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "session: none of your sessions has that key")
    if session != who.session.key:
        return see_other("/sessions")
    response = see_other("/signin")
    response.delete_cookie(SESSION_COOKIE)
    return response
