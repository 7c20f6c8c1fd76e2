"""Signing in and out.

The sign-in form has no session yet, so its CSRF token is bound to a
pre-session cookie instead. Wrong passwords slow the next attempt down
(``Throttle``, on the injected clock); a refused attempt shows the form again.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from services.workspace.identity import csrf_ok, csrf_token, issue_session
from services.workspace.routes.answers import HTML_PAGE, redirect, render, see_other
from services.workspace.routes.deps import (
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    Anyone,
    Secret,
    Settings,
    Throttled,
    Time,
    Users,
)
from services.workspace.routes.views import SignInPage

router = APIRouter(tags=["sign-in"])


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request, key: Secret, config: Settings, next: str = "/") -> HTMLResponse:
    pre = request.cookies.get(PRESESSION_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, None, SignInPage(next=safe_next(next), csrf=csrf_token(pre, key)))
    response.set_cookie(
        PRESESSION_COOKIE, pre, httponly=True, samesite="strict", secure=config.secure_cookies
    )
    return response


@router.post(
    "/signin",
    **redirect(
        "Signed in: to the page asked for",
        {
            401: {"description": "The form again: the name or password is wrong", "content": HTML_PAGE},
            429: {"description": "The form again: too many wrong passwords, wait", "content": HTML_PAGE},
        },
    ),
)
async def signin(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    key: Secret,
    config: Settings,
    people: Users,
    throttle: Throttled,
    clock: Time,
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    pre = request.cookies.get(PRESESSION_COOKIE, "")
    if not pre or not csrf_ok(csrf, pre, key):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the sign-in form expired: reload the page")
    address = request.client.host if request.client else "-"

    def refused(error: str, code: int) -> HTMLResponse:
        again = SignInPage(next=safe_next(next), csrf=csrf, name=name, error=error)
        return render(request, None, again, status_code=code)

    wait = throttle.wait_for(name, address, clock.monotonic())
    if wait > 0:
        return refused(f"Too many wrong passwords: try again in {math.ceil(wait)} s.", 429)
    person = await people.verify(name, password)
    if person is None:
        throttle.failed(name, address, clock.monotonic())
        return refused("Name or password is wrong.", 401)
    throttle.succeeded(name, address)
    token = issue_session(person.name, key, clock.now(), dt.timedelta(hours=config.session_hours))
    response = see_other(safe_next(next))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=config.secure_cookies,
        max_age=int(config.session_hours * 3600),
    )
    response.delete_cookie(PRESESSION_COOKIE)
    return response


@router.post("/signout", **redirect("Signed out: to the sign-in page"))
async def signout(who: Anyone) -> Response:
    response = see_other("/signin")
    response.delete_cookie(SESSION_COOKIE)
    return response


def safe_next(target: str) -> str:
    """Only a path of this site: an absolute or protocol-relative address would be an open redirect."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
