"""The workspace's pages: sign-in, the readiness board, worklists, record pages with their evidence, review.

Every page needs a signed-in person; a visitor without a session is sent to
sign in. Every form that changes something carries a CSRF token bound to the
session, and every change needs the person's role and is recorded with their
name (never a name typed into a form).
"""

import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from lxml import etree

from services.workspace import evidence, live
from services.workspace.adapters.audit import AuditLog
from services.workspace.adapters.pipeline import PipelineApi, PipelineUnavailable
from services.workspace.adapters.users import UserStore
from services.workspace.approvals import ApprovalBook, flatten
from services.workspace.identity import (
    Person,
    PersonRole,
    Session,
    Throttle,
    csrf_ok,
    csrf_token,
    issue_session,
    read_session,
)
from services.workspace.rollout import PolicyTable
from services.workspace.settings import WorkspaceSettings
from shared import topics
from shared.contracts.events import DELIVERY_STAGE, DELIVERY_STATES, Decision, Review, State
from shared.contracts.findings import Owner
from shared.contracts.policies import PolicyChange, ReleasePolicy
from shared.stage import Emitter

SESSION_COOKIE = "coc_session"
PRESESSION_COOKIE = "coc_presession"  # binds the sign-in form's CSRF token before there is a session
TEMPLATES = Path(__file__).parent / "templates"
STATES = [s.value for s in State if s not in DELIVERY_STATES]  # delivery is shown beside archived
# The certificates' deliveries to the authorities, as the board counts them (in the order they go).
DELIVERIES = [
    (State.DELIVERY_QUEUED.value, "Waiting to be sent"),
    (State.SUBMITTED.value, "Sent, awaiting the authority"),
    (State.DELIVERY_RETRYING.value, "Sent again after a fault"),
    (State.DELIVERED.value, "Delivered"),
    (State.DELIVERY_REJECTED.value, "Rejected by the authority"),
]
WAITING = {State.BLOCKED.value, State.NEEDS_REVIEW.value, State.HELD.value}
TEAMS = [o.value for o in Owner]
VIN_MAX = 32
HTML_PAGE = {"text/html": {"schema": {"type": "string"}}}


def redirect(description: str, answers: dict[int | str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Route options of an endpoint that answers with a 303 to a page (post, then redirect, then get)."""
    return {
        "status_code": status.HTTP_303_SEE_OTHER,
        "response_class": RedirectResponse,
        "responses": {303: {"description": description}, **(answers or {})},
    }


class SignInRequired(Exception):
    """No valid session: the visitor is sent to the sign-in page, then back."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


class ListFilters:
    """The filters and page a worklist or a state list is asked for (query parameters)."""

    def __init__(
        self,
        group: Annotated[str, Query(max_length=64)] = "",
        code: Annotated[str, Query(max_length=64)] = "",
        min_age_h: Annotated[float | None, Query(ge=0, le=24 * 365)] = None,
        page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    ) -> None:
        self.group, self.code = group.strip(), code.strip().upper()
        self.min_age_h, self.page_no = min_age_h, page_no

    def api(self, page_size: int) -> dict[str, Any]:
        """The status API's parameters for this page."""
        return {
            "group": self.group,
            "code": self.code,
            "min_age_s": int(self.min_age_h * 3600) if self.min_age_h else None,
            "page": self.page_no,
            "size": page_size,
        }

    def shown(self) -> dict[str, Any]:
        """The filters as the page's form shows them."""
        return {"group": self.group, "code": self.code, "min_age_h": self.min_age_h or ""}


@dataclass
class Workspace:
    """What the pages use, made by the app."""

    settings: WorkspaceSettings
    users: UserStore
    audit: AuditLog
    api: PipelineApi
    feed: live.LiveFeed
    emitter: Emitter
    schema: Callable[[], etree.XMLSchema]
    throttle: Throttle
    policies: PolicyTable
    approvals: ApprovalBook

    def secret(self) -> bytes:
        """The key of sessions and CSRF tokens; read when used, so the app can be built without it."""
        return self.settings.secret()


@dataclass(frozen=True)
class Visit:
    """The signed-in person of a request, and the CSRF token their forms carry."""

    person: Person
    session: Session
    csrf: str


def router(ws: Workspace) -> APIRouter:
    pages = APIRouter()
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.filters["age"] = age_text
    templates.env.filters["age_since"] = lambda time, at: age_text(
        (at - parse_time(str(time))).total_seconds()
    )
    secret = ws.secret

    async def visit(request: Request) -> Visit:
        session = read_session(request.cookies.get(SESSION_COOKIE), secret(), now())
        person = await ws.users.get(session.name) if session else None
        if session is None or person is None:
            raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return Visit(person, session, csrf_token(session.session_id, secret()))

    Visitor = Annotated[Visit, Depends(visit)]

    def changing(role: PersonRole) -> Callable[..., Awaitable[Visit]]:
        """A dependency for a form that changes something: the role, and the form's CSRF token."""

        async def check(
            request: Request, who: Visitor, csrf: Annotated[str, Form(max_length=200)] = ""
        ) -> Visit:
            if not csrf_ok(csrf, who.session.session_id, secret()):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or wrong: reload the page"
                )
            if not who.person.can(role):
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the role {role.value}")
            return who

        return check

    def page(
        request: Request, template: str, who: Visit | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            template,
            {"who": who, "teams": TEAMS, "roles": PersonRole, **context},
            status_code=status_code,
        )

    # -- signing in ----------------------------------------------------------------------------

    @pages.get("/signin", response_class=HTMLResponse)
    async def signin_form(request: Request, next: str = "/") -> HTMLResponse:
        pre = request.cookies.get(PRESESSION_COOKIE) or secrets.token_urlsafe(24)
        response = page(request, "signin.html", None, next=safe_next(next), csrf=csrf_token(pre, secret()))
        response.set_cookie(
            PRESESSION_COOKIE, pre, httponly=True, samesite="strict", secure=ws.settings.secure_cookies
        )
        return response

    @pages.post(
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
        csrf: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        pre = request.cookies.get(PRESESSION_COOKIE, "")
        if not pre or not csrf_ok(csrf, pre, secret()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the sign-in form expired: reload the page")
        address = request.client.host if request.client else "-"

        def refused(error: str, code: int) -> HTMLResponse:
            again = {"next": safe_next(next), "csrf": csrf, "name": name, "error": error}
            return page(request, "signin.html", None, status_code=code, **again)

        wait = ws.throttle.wait_for(name, address, time.monotonic())
        if wait > 0:
            return refused(f"Too many wrong passwords: try again in {int(wait) + 1} s.", 429)
        person = await ws.users.verify(name, password)
        if person is None:
            ws.throttle.failed(name, address, time.monotonic())
            return refused("Name or password is wrong.", 401)
        ws.throttle.succeeded(name, address)
        token = issue_session(person.name, secret(), now(), dt.timedelta(hours=ws.settings.session_hours))
        response = RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=ws.settings.secure_cookies,
            max_age=int(ws.settings.session_hours * 3600),
        )
        response.delete_cookie(PRESESSION_COOKIE)
        return response

    @pages.post("/signout", **redirect("Signed out: to the sign-in page"))
    async def signout(who: Annotated[Visit, Depends(changing(PersonRole.VIEWER))]) -> Response:
        response = RedirectResponse("/signin", status.HTTP_303_SEE_OTHER)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # -- the board -----------------------------------------------------------------------------

    @pages.get("/", response_class=HTMLResponse)
    async def board(request: Request, who: Visitor) -> HTMLResponse:
        try:
            readiness, problem = await ws.api.readiness(), None
        except PipelineUnavailable as exc:
            readiness, problem = {}, str(exc)
        return page(
            request, "board.html", who, board=board_view(readiness), deliveries=DELIVERIES, problem=problem
        )

    @pages.get("/board.json")
    async def board_json(who: Visitor) -> dict[str, Any]:
        return board_view(await ws.api.readiness())

    @pages.get(
        "/live",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: a status change of the board (or of one VIN)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def live_updates(
        request: Request, who: Visitor, vin: Annotated[str | None, Query(max_length=VIN_MAX)] = None
    ) -> StreamingResponse:
        async def body() -> Any:
            async with ws.feed.listen(vin.upper() if vin else None) as listener:
                async for chunk in live.stream(listener, request.is_disconnected):
                    yield chunk

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # -- worklists and state lists -------------------------------------------------------------

    @pages.get("/states/{state}", response_class=HTMLResponse)
    async def state_list(
        request: Request, who: Visitor, state: State, filters: Annotated[ListFilters, Depends()]
    ) -> HTMLResponse:
        """The records behind one count of the board: a state, in a group or all groups."""

        async def fetch() -> dict[str, Any]:
            if state is State.ARCHIVED:  # found by VIN; the page says so
                return {"items": []}
            return await ws.api.records_in(state.value, **filters.api(ws.settings.page_size))

        return await list_page(request, who, fetch, filters, None, state.value, f"/states/{state.value}")

    @pages.get("/worklists/{team}", response_class=HTMLResponse)
    async def worklist(
        request: Request, who: Visitor, team: Owner, filters: Annotated[ListFilters, Depends()]
    ) -> HTMLResponse:
        async def fetch() -> dict[str, Any]:
            return await ws.api.worklist(team.value, **filters.api(ws.settings.page_size))

        return await list_page(request, who, fetch, filters, team.value, None, f"/worklists/{team.value}")

    async def list_page(
        request: Request,
        who: Visit,
        fetch: Callable[[], Awaitable[dict[str, Any]]],
        filters: ListFilters,
        team: str | None,
        state: str | None,
        action: str,
    ) -> HTMLResponse:
        """A worklist or a state list: one page of it, with its filters and paging."""
        try:
            found, problem = await fetch(), None
        except PipelineUnavailable as exc:
            found, problem = {"items": []}, str(exc)
        items = found.get("items", [])
        total = int(found.get("total", len(items)))
        return page(
            request,
            "worklist.html",
            who,
            team=team,
            state=state,
            action=action,
            items=items,
            total=total,
            page_no=filters.page_no,
            pages=max(1, -(-total // ws.settings.page_size)),
            filters=filters.shown(),
            problem=problem,
            now=now(),
        )

    # -- one record ----------------------------------------------------------------------------

    @pages.get("/records", **redirect("To the page of the VIN asked for"))
    async def find_record(who: Visitor, vin: Annotated[str, Query(max_length=VIN_MAX)] = "") -> Response:
        wanted = vin.strip().upper()
        if not wanted:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "vin: give a VIN")
        return RedirectResponse(f"/records/{quote(wanted)}", status.HTTP_303_SEE_OTHER)

    @pages.get("/records/{vin}", response_class=HTMLResponse)
    async def record_page(request: Request, who: Visitor, vin: str) -> HTMLResponse:
        vin = check_vin(vin)
        problems: list[str] = []
        record = certificate = None
        try:
            record = await ws.api.record(vin)
        except PipelineUnavailable as exc:
            problems.append(str(exc))
        try:
            certificate = await ws.api.certificate(vin)
        except PipelineUnavailable as exc:
            problems.append(str(exc))
        check = sections = None
        if certificate is not None:
            check = evidence.check(certificate.xml, ws.schema(), certificate.sha256, certificate.archived_at)
            sections = evidence.readable(certificate.xml)
        actions = await ws.audit.for_target(f"record:{vin}", limit=50)
        try:
            received = await ws.api.pending(vin)
        except PipelineUnavailable:
            received = None
        approval = None
        if received is not None:
            history = ws.approvals.history(received["approval_key"])
            approval = history[-1].approval if history else None
        return page(
            request,
            "record.html",
            who,
            received=received,
            approval=approval,
            problems=problems,
            vin=vin,
            record=record,
            certificate=certificate,
            check=check,
            sections=sections,
            actions=actions,
            waiting=bool(record and record["state"] in WAITING),
            timeline=timeline_of(record, actions),
            revisions=revisions_of(record),
            settled=settled_findings(record),
            done=request.query_params.get("done"),
        )

    @pages.get(
        "/records/{vin}/evidence.zip",
        response_class=Response,
        responses={
            200: {
                "description": "The certificate's release evidence (certificate, build, approval, release, "
                "signer, chain, delivery receipts, manifest), as a download",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            },
            404: {"description": "No certificate with evidence for that VIN (and revision)"},
        },
    )
    async def download_evidence(
        who: Visitor, vin: str, revision: Annotated[int | None, Query(ge=1)] = None
    ) -> Response:
        vin = check_vin(vin)
        bundle = await ws.api.evidence(vin, revision)
        if bundle is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no release evidence for {vin}")
        return attachment(
            bundle, "application/zip", f"evidence-{vin}{'-' + str(revision) if revision else ''}.zip"
        )

    @pages.get(
        "/records/{vin}/certificate.xml",
        response_class=Response,
        responses={
            200: {
                "description": "The signed IVI 2.0 document exactly as archived, as a download",
                "content": {"application/xml": {"schema": {"type": "string"}}},
            },
            404: {"description": "No certificate for that VIN (and revision)"},
        },
    )
    async def download(
        who: Visitor, vin: str, revision: Annotated[int | None, Query(ge=1)] = None
    ) -> Response:
        vin = check_vin(vin)
        certificate = await ws.api.certificate(vin, revision)
        if certificate is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no certificate for {vin}")
        # The bytes exactly as archived: any re-formatting would break the seal.
        return attachment(
            certificate.xml,
            "application/xml",
            f"{vin}-{certificate.revision}.xml",
            {"X-Coc-Sha256": certificate.sha256},
        )

    @pages.post(
        "/records/{vin}/review",
        **redirect(
            "Decided: back to the record's page, which says so",
            {409: {"description": "The record is not waiting for a review of that revision"}},
        ),
    )
    async def review(
        vin: str,
        who: Annotated[Visit, Depends(changing(PersonRole.REVIEWER))],
        revision: Annotated[int, Form(ge=1)],
        decision: Annotated[Decision, Form()],
        comment: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        vin = check_vin(vin)
        record = await ws.api.record(vin)
        if record is None or record["revision"] != revision or record["state"] not in WAITING:
            raise HTTPException(status.HTTP_409_CONFLICT, f"{vin}:{revision} is not waiting for a review")
        if decision is Decision.REJECT and not comment.strip():
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "comment: say why the record is rejected"
            )
        decided = Review(
            vin=vin, revision=revision, decision=decision, reviewer=who.person.name, comment=comment.strip()
        )
        await ws.emitter.send(topics.REVIEWS, decided, key=vin, correlation_id=f"{vin}:{revision}")
        await ws.audit.record(
            who.person,
            f"review:{decision.value}",
            f"record:{vin}",
            {"revision": revision, "decision": decision.value, "comment": decided.comment},
            now(),
        )
        return RedirectResponse(f"/records/{quote(vin)}?done={decision.value}", status.HTTP_303_SEE_OTHER)

    # -- approvals -----------------------------------------------------------------------------

    @pages.get("/approvals", response_class=HTMLResponse)
    async def approvals(request: Request, who: Visitor) -> HTMLResponse:
        current = ws.approvals.current()
        counts = {a.key: len(ws.approvals.history(a.key)) for a in current}
        return page(request, "approvals.html", who, approvals=current, counts=counts)

    @pages.get("/approvals/{key:path}", response_class=HTMLResponse)
    async def approval(request: Request, who: Visitor, key: str) -> HTMLResponse:
        history = ws.approvals.history(key)
        if not history:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no approval {key}")
        latest = history[-1].approval
        rows = list(flatten(latest.certificate))
        try:
            waiting, problem = await ws.api.waiting_on(key), None
        except PipelineUnavailable as exc:
            waiting, problem = [], str(exc)
        return page(
            request,
            "approval.html",
            who,
            approval=latest,
            history=history,
            rows=rows,
            waiting=waiting,
            problem=problem,
        )

    # -- rollout -------------------------------------------------------------------------------

    @pages.get("/rollout", response_class=HTMLResponse)
    async def rollout(request: Request, who: Visitor) -> HTMLResponse:
        try:
            known = set((await ws.api.readiness()).get("by_group", {}))
            problem = None
        except PipelineUnavailable as exc:
            known, problem = set(), str(exc)
        known.discard("unknown")
        groups = sorted(known | set(ws.policies.groups()))
        rows = []
        for group in groups:
            history = await ws.audit.for_target(f"group:{group}", limit=5)
            rows.append({"group": group, "change": ws.policies.get(group), "history": history})
        return page(
            request,
            "rollout.html",
            who,
            rows=rows,
            policies=[p.value for p in ReleasePolicy],
            problem=problem,
            done=request.query_params.get("done"),
        )

    @pages.post("/rollout", **redirect("Set: back to the rollout page, which says so"))
    async def set_policy(
        who: Annotated[Visit, Depends(changing(PersonRole.COMPLIANCE_LEAD))],
        group: Annotated[str, Form(min_length=1, max_length=64)],
        policy: Annotated[ReleasePolicy, Form()],
        comment: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        group = group.strip()
        before = ws.policies.get(group)
        change = PolicyChange(
            vehicle_group=group,
            policy=policy,
            set_by=who.person.name,
            set_at=now(),
            comment=comment.strip() or None,
        )
        await ws.emitter.send(topics.POLICIES, change, key=group, correlation_id=f"policy:{group}")
        ws.policies.add(change)
        await ws.audit.record(
            who.person,
            "policy",
            f"group:{group}",
            {
                "policy": [before.policy.value if before else "default", policy.value],
                "comment": change.comment,
            },
            change.set_at,
        )
        return RedirectResponse(f"/rollout?done={quote(group)}", status.HTTP_303_SEE_OTHER)

    return pages


def board_view(readiness: dict[str, Any]) -> dict[str, Any]:
    """The board's numbers: per group a count per state, totals per state, and the extras."""
    by_group: dict[str, dict[str, int]] = readiness.get("by_group", {})
    groups = sorted(by_group)
    return {
        "states": STATES,
        "groups": [{"name": g, "counts": {s: int(by_group[g].get(s, 0)) for s in STATES}} for g in groups],
        "totals": {s: int(readiness.get("by_state", {}).get(s, 0)) for s in STATES},
        "total": int(readiness.get("total", 0)),
        "archived_last_hour": readiness.get("archived_last_hour"),
        "archived_last_day": readiness.get("archived_last_day"),
        "open_findings_by_owner": readiness.get("open_findings_by_owner", {}),
        "deliveries": {
            state: int(readiness.get("delivery_by_state", {}).get(state, 0)) for state, _ in DELIVERIES
        },
        "as_of": readiness.get("as_of"),
        "events_behind": int(readiness.get("events_behind") or 0),
    }


def timeline_of(record: dict[str, Any] | None, actions: list[Any]) -> list[dict[str, Any]]:
    """The record's status events and the people's actions on it, newest first."""
    rows: list[dict[str, Any]] = []
    for entry in (record or {}).get("timeline", []):
        rows.append({**entry, "kind": "event", "sort": entry["time"]})
    for action in actions:
        rows.append(
            {
                "kind": "action",
                "time": action.at.isoformat(),
                "sort": action.at.isoformat(),
                "stage": "workspace",
                "state": action.action,
                "service": action.person,
                "reason": action.change_text(),
                "trace_id": None,
            }
        )
    return sorted(rows, key=lambda row: parse_time(row["sort"]), reverse=True)


def age_text(seconds: float) -> str:
    """How long something has waited, as a person says it: "45 min", "3 h 20 min", "2 d 4 h"."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def settled_findings(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Findings earlier events carried that the record no longer has, each with when it was last seen."""
    if not record:
        return []
    open_now = {(f["code"], f["path"]) for f in record.get("findings", [])}
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in sorted(record.get("timeline", []), key=lambda e: parse_time(e["time"])):
        for finding in entry.get("findings", []):
            key = (finding["code"], finding["path"])
            if key not in open_now:
                seen[key] = {**finding, "revision": entry["revision"], "last_seen": entry["time"]}
    return sorted(seen.values(), key=lambda f: parse_time(f["last_seen"]), reverse=True)


def revisions_of(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each revision the timeline holds, newest first, with the last state it reached and its delivery.

    Delivery events speak for the certificate's delivery, not for the revision's
    state: a delivered revision reached ``archived``, and its delivery is beside it.
    """
    last: dict[int, dict[str, Any]] = {}
    delivery: dict[int, dict[str, Any]] = {}
    for entry in (record or {}).get("timeline", []):
        revision = entry["revision"]
        kept = delivery if entry["stage"] == DELIVERY_STAGE else last
        if revision not in kept or parse_time(entry["time"]) >= parse_time(kept[revision]["time"]):
            kept[revision] = entry
    return [
        {
            "revision": r,
            "state": last[r]["state"],
            "time": (delivery.get(r) or last[r])["time"],
            "delivery": delivery[r]["state"] if r in delivery else None,
        }
        for r in sorted(last, reverse=True)
    ]


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def attachment(content: bytes, media_type: str, name: str, headers: dict[str, str] | None = None) -> Response:
    """A download: the bytes as they are, saved under ``name``."""
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(content, media_type=media_type, headers={**disposition, **(headers or {})})


def check_vin(vin: str) -> str:
    vin = vin.strip().upper()
    if not 1 <= len(vin) <= VIN_MAX or not vin.isalnum():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "vin: letters and digits only, at most 32")
    return vin


def safe_next(target: str) -> str:
    """Only a path of this site: an absolute or protocol-relative address would be an open redirect."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
