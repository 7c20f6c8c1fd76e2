"""How a room answers: a page from its view model, a redirect after a form, a download."""

from __future__ import annotations

from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.workspace import words
from services.workspace.identity import PersonRole
from services.workspace.routes.deps import Visit
from services.workspace.routes.views import RECORD_TYPES, Page, age_since, age_text
from shared.contracts.findings import Owner

TEMPLATES = Path(__file__).parents[1] / "templates"
TEAMS = [o.value for o in Owner]
HTML_PAGE = {"text/html": {"schema": {"type": "string"}}}


@cache
def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=TEMPLATES)
    found.env.filters["age"] = age_text
    found.env.filters["age_since"] = age_since
    found.env.globals["record_type_choices"] = list(RECORD_TYPES.items())  # the filter form's (filters.html)
    words.install(found.env)  # the default zone; the app installs its setting's (create_app)
    return found


def render(request: Request, who: Visit | None, view: Page, status_code: int = 200) -> HTMLResponse:
    """The page of ``view``: its template, given the view model's fields and what every page shows."""
    shown = {f.name: getattr(view, f.name) for f in fields(view)}
    context = {"who": who, "teams": TEAMS, "roles": PersonRole, **shown}
    return templates().TemplateResponse(request, view.template, context, status_code=status_code)


def see_other(target: str) -> RedirectResponse:
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


def redirect(description: str, answers: dict[int | str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Route options of an endpoint that answers with a 303 to a page (post, then redirect, then get)."""
    return {
        "status_code": status.HTTP_303_SEE_OTHER,
        "response_class": RedirectResponse,
        "responses": {303: {"description": description}, **(answers or {})},
    }


def attachment(content: bytes, media_type: str, name: str, headers: dict[str, str] | None = None) -> Response:
    """A download: the bytes as they are, saved under ``name``."""
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(content, media_type=media_type, headers={**disposition, **(headers or {})})
