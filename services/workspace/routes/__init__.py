"""The workspace's pages, one room per area: sign-in, board, lists, records, review, approvals, rollout.

Every page needs a signed-in person; a visitor without a session is sent to
sign in. Every form that changes something carries a CSRF token bound to the
session, and every change needs the person's role and is recorded with their
name (never a name typed into a form). What the rooms depend on is in ``deps``,
what their pages show in ``views``.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

from services.workspace.adapters.pipeline import PipelineUnavailable
from services.workspace.form_limit import FormFieldLimit
from services.workspace.routes import (
    approvals,
    archived,
    audit,
    board,
    deps,
    lists,
    records,
    reissue,
    review,
    rollout,
    seals,
    sessions,
    signin,
    upload,
)
from shared.contracts.base import reason_of

ROOMS = (
    signin.router,
    sessions.router,
    board.router,
    archived.router,  # before lists: /states/archived is not a state list
    lists.router,
    records.router,
    review.router,
    upload.router,  # before approvals: /approvals/upload is not an approval key
    approvals.router,
    reissue.router,
    rollout.router,
    seals.router,
    audit.router,
)


def include(app: FastAPI, workspace: deps.Workspace | None = None) -> None:
    """Serve the rooms on ``app``, with ``workspace`` as what they use (a test overrides the parts instead)."""
    if workspace is not None:
        app.state.workspace = workspace
    for room in ROOMS:
        app.include_router(room)
    app.exception_handler(deps.SignInRequired)(sign_in_first)
    app.exception_handler(PipelineUnavailable)(unavailable)
    app.exception_handler(RequestValidationError)(bad_request)
    app.add_middleware(FormFieldLimit)  # a form's text field over 1 MB: 413 naming it, not Starlette's 400


async def sign_in_first(_request: Request, exc: deps.SignInRequired) -> RedirectResponse:
    return RedirectResponse(f"/signin?next={quote(exc.target)}", status.HTTP_303_SEE_OTHER)


async def unavailable(_request: Request, exc: PipelineUnavailable) -> JSONResponse:
    """A service an answer cannot do without did not answer (a page shows what it has instead)."""
    return JSONResponse({"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE)


async def bad_request(_request: Request, exc: RequestValidationError) -> PlainTextResponse:
    """A query, path or form value a page cannot take (a date typed by hand in a link): one line
    naming each field and why, not FastAPI's JSON."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        parts.append(f"{where}: {reason_of(error)}")
    return PlainTextResponse("; ".join(parts) + "\n", status.HTTP_422_UNPROCESSABLE_ENTITY)
