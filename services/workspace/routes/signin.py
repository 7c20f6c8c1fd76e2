"""Signing in and out: with a local password, or through the company's OpenID provider.

The sign-in form has no session yet, so its CSRF token is bound to a
pre-session cookie instead. Wrong passwords slow the next attempt down
(``Throttle``, on the injected clock); a refused attempt shows the form again.

Company sign-in (``/signin/oidc/start`` then back to ``/signin/oidc``) keeps
the attempt's state, nonce and PKCE verifier in a sealed cookie for ten
minutes; the provider's answer is taken only with the same state, and its ID
token only with the same nonce. Either way a sign-in starts a session kept on
the server (``SessionStore``); the cookie holds only its random token, and
signing out deletes the session, so a copied cookie opens nothing afterwards.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.workspace.identity import (
    Person,
    SessionSource,
    csrf_ok,
    csrf_token,
    seal,
    session_key,
    unseal,
)
from services.workspace.oidc import Attempt, OidcError, authorization_url, end_session_url, name_of, roles_of
from services.workspace.routes.answers import HTML_PAGE, redirect, render, see_other
from services.workspace.routes.deps import (
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    Anyone,
    Oidc,
    Secret,
    Sessions,
    Settings,
    Throttled,
    Time,
    Users,
)
from services.workspace.routes.views import SignInPage
from services.workspace.settings import WorkspaceSettings

router = APIRouter(tags=["sign-in"])
ATTEMPT_COOKIE = "coc_oidc"
ATTEMPT_TTL = dt.timedelta(minutes=10)
CODE_MAX = 2048


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request, key: Secret, config: Settings, next: str = "/") -> HTMLResponse:
    return _signin_page(request, config, key, next)


def _signin_page(
    request: Request,
    config: WorkspaceSettings,
    key: bytes,
    next: str,
    error: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    """The sign-in page, its form's CSRF token bound to the browser's pre-session cookie (set when missing)."""
    pre = request.cookies.get(PRESESSION_COOKIE) or secrets.token_urlsafe(24)
    page = _form(config, next, csrf_token(pre, key), error=error)
    response = render(request, None, page, status_code=status_code)
    response.set_cookie(PRESESSION_COOKIE, pre, httponly=True, samesite="strict")
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
    kept: Sessions,
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
        again = _form(config, next, csrf, name=name, error=error)
        return render(request, None, again, status_code=code)

    wait = throttle.wait_for(name, address, clock.monotonic())
    if wait > 0:
        return refused(f"Too many wrong passwords: try again in {math.ceil(wait)} s.", 429)
    person = await people.verify(name, password)
    if person is None:
        throttle.failed(name, address, clock.monotonic())
        return refused("Name or password is wrong.", 401)
    throttle.succeeded(name, address)
    response = see_other(safe_next(next))
    await _start(request, response, kept, config, clock.now(), person, SessionSource.LOCAL)
    response.delete_cookie(PRESESSION_COOKIE)
    return response


@router.get(
    "/signin/oidc/start",
    **redirect(
        "To the company's sign-in page",
        {502: {"description": "The sign-in page: the provider did not answer", "content": HTML_PAGE}},
    ),
)
async def oidc_start(
    request: Request,
    config: Settings,
    provider: Oidc,
    key: Secret,
    clock: Time,
    next: Annotated[str, Query(max_length=500)] = "/",
) -> Response:
    if provider is None or config.oidc_redirect_url is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "company sign-in is not set up here")
    try:
        where = await provider.provider()
    except OidcError as exc:
        return _signin_page(request, config, key, next, str(exc), status.HTTP_502_BAD_GATEWAY)
    attempt = Attempt.fresh()
    sealed = seal(
        "oidc",
        [attempt.state, attempt.nonce, attempt.verifier, safe_next(next)],
        key,
        clock.now(),
        ATTEMPT_TTL,
    )
    url = authorization_url(where, provider.client_id, config.oidc_redirect_url, config.oidc_scopes, attempt)
    response = RedirectResponse(url, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        ATTEMPT_COOKIE,
        sealed,
        max_age=int(ATTEMPT_TTL.total_seconds()),
        path="/signin/oidc",
        httponly=True,
        samesite="lax",  # the provider's redirect back is a top-level GET from another site
    )
    return response


@router.get(
    "/signin/oidc",
    **redirect(
        "Signed in through the company's provider: to the page asked for",
        {400: {"description": "The sign-in page with what went wrong", "content": HTML_PAGE}},
    ),
)
async def oidc_return(
    request: Request,
    config: Settings,
    provider: Oidc,
    key: Secret,
    kept: Sessions,
    clock: Time,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    if provider is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "company sign-in is not set up here")
    fields = unseal("oidc", request.cookies.get(ATTEMPT_COOKIE), key, clock.now())
    next_page = fields[3] if fields and len(fields) == 4 else "/"
    try:
        if fields is None or len(fields) != 4:
            raise OidcError("this sign-in took too long or was not started here: try again")
        attempt = Attempt(*fields[:3])
        if not attempt.state_ok(state):
            raise OidcError("the provider's answer belongs to another sign-in: try again")
        if error or not code or len(code) > CODE_MAX:
            raise OidcError(f"the provider did not sign you in ({error[:60] or 'no code'})")
        claims, id_token = await provider.sign_in(code, attempt, clock.now())
        roles = roles_of(claims, config.oidc_groups_claim, config.oidc_group_roles)
        if not roles:
            raise OidcError("your company account is in no group that holds a role in the workspace")
        person = Person(name_of(claims), roles)
    except OidcError as exc:
        failed = _signin_page(request, config, key, next_page, str(exc), status.HTTP_400_BAD_REQUEST)
        failed.delete_cookie(ATTEMPT_COOKIE, path="/signin/oidc")
        return failed
    response = see_other(safe_next(next_page))
    await _start(request, response, kept, config, clock.now(), person, SessionSource.OIDC, id_token)
    response.delete_cookie(ATTEMPT_COOKIE, path="/signin/oidc")
    return response


@router.post("/signout", **redirect("Signed out: to the sign-in page, or to the company's sign-out"))
async def signout(who: Anyone, kept: Sessions, config: Settings, provider: Oidc) -> Response:
    await kept.end(who.session.key)
    target = "/signin"
    if who.session.source is SessionSource.OIDC and provider is not None and config.oidc_redirect_url:
        after = config.oidc_redirect_url.removesuffix("/oidc")  # this workspace's /signin
        try:
            where = await provider.provider()
        except OidcError:
            where = None
        target = (where and end_session_url(where, provider.client_id, who.session.id_token, after)) or target
    response = see_other(target)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def _start(
    request: Request,
    response: Response,
    kept: Sessions,
    config: WorkspaceSettings,
    now: dt.datetime,
    person: Person,
    source: SessionSource,
    id_token: str = "",
) -> None:
    """Start a session kept on the server, and hand its token to the browser (ending the one it had, if any)."""
    previous = session_key(request.cookies.get(SESSION_COOKIE))
    if previous is not None:
        await kept.end(previous)
    token = await kept.start(
        person,
        source,
        now,
        address=request.client.host if request.client else "",
        agent=request.headers.get("user-agent", ""),
        id_token=id_token,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        max_age=int(config.session_hours * 3600),
    )


def _form(
    config: WorkspaceSettings, next: str, csrf: str, name: str = "", error: str | None = None
) -> SignInPage:
    company = config.oidc_name if config.oidc_enabled() else None
    return SignInPage(next=safe_next(next), csrf=csrf, name=name, error=error, company=company)


def safe_next(target: str) -> str:
    """Only a path of this site: an absolute or protocol-relative address would be an open redirect."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
