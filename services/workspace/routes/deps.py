"""What the workspace's pages depend on, each a FastAPI dependency a test replaces through ``app.dependency_overrides``.

The app keeps its ``Workspace`` (the adapters and tables it chose) on
``app.state.workspace``; each dependency below hands a page one part of it.
A test builds an app with the rooms and overrides these parts with fakes:
nothing here reaches the network or a database by itself.

Two dependencies guard every change: ``csrf_checked`` (the form carries the
session's token) and one of ``as_anyone``, ``as_reviewer``, ``as_lead`` (the
person holds the role). Both refuse with 403; the CSRF check comes first, so a
forged form learns nothing about the roles.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Protocol, TypeVar, cast

from fastapi import Depends, Form, HTTPException, Request, status
from lxml import etree
from pydantic import BaseModel

from services.workspace.adapters.audit import AuditLog
from services.workspace.adapters.oidc import OidcClient
from services.workspace.adapters.pipeline import PipelineApi, PipelineUnavailable
from services.workspace.adapters.sessions import SessionStore
from services.workspace.adapters.users import UserStore
from services.workspace.approvals import ApprovalBook
from services.workspace.identity import (
    Person,
    PersonRole,
    Session,
    SessionSource,
    Throttle,
    csrf_ok,
    csrf_token,
)
from services.workspace.live import LiveFeed
from services.workspace.settings import WorkspaceSettings
from services.workspace.upload.staged import StagedUploads
from shared.master_table import MasterTable
from shared.policy_table import PolicyTable
from shared.seal_table import SealTable

SESSION_COOKIE = "coc_session"
PRESESSION_COOKIE = "coc_presession"  # binds the sign-in form's CSRF token before there is a session
VIN_MAX = 32
T = TypeVar("T")


class Clock(Protocol):
    """The time the pages use: wall time for sessions and records, a monotonic count for the throttle."""

    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class Sender(Protocol):
    """Where a person's decision goes: the stage's emitter, onto a topic."""

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None: ...


@dataclass
class Workspace:
    """What the pages use, chosen by the app."""

    settings: WorkspaceSettings
    users: UserStore
    audit: AuditLog
    api: PipelineApi
    feed: LiveFeed
    emitter: Sender
    schema: Callable[[], etree.XMLSchema]  # loaded on first use: a page without a certificate never needs it
    throttle: Throttle
    policies: PolicyTable
    approvals: ApprovalBook
    sessions: SessionStore
    oidc: OidcClient | None = None  # company sign-in, when configured
    clock: Clock = field(default_factory=SystemClock)
    master: MasterTable = field(default_factory=MasterTable)  # plants and groups, from coc.masterdata.v1
    seals: SealTable = field(default_factory=SealTable)  # each approval holder's seal, from coc.seals.v1
    uploads: StagedUploads = field(
        default_factory=StagedUploads
    )  # approval uploads between dry run and publish


def workspace(request: Request) -> Workspace:
    return cast(Workspace, request.app.state.workspace)


Parts = Annotated[Workspace, Depends(workspace)]


def settings(ws: Parts) -> WorkspaceSettings:
    return ws.settings


def clock(ws: Parts) -> Clock:
    return ws.clock


def pipeline(ws: Parts) -> PipelineApi:
    return ws.api


def users(ws: Parts) -> UserStore:
    return ws.users


def audit(ws: Parts) -> AuditLog:
    return ws.audit


def emitter(ws: Parts) -> Sender:
    return ws.emitter


def feed(ws: Parts) -> LiveFeed:
    return ws.feed


def schema(ws: Parts) -> Callable[[], etree.XMLSchema]:
    return ws.schema


def throttle(ws: Parts) -> Throttle:
    return ws.throttle


def policies(ws: Parts) -> PolicyTable:
    return ws.policies


def approvals(ws: Parts) -> ApprovalBook:
    return ws.approvals


def master(ws: Parts) -> MasterTable:
    return ws.master


def uploads(ws: Parts) -> StagedUploads:
    return ws.uploads


def sessions(ws: Parts) -> SessionStore:
    return ws.sessions


def oidc(ws: Parts) -> OidcClient | None:
    return ws.oidc


Settings = Annotated[WorkspaceSettings, Depends(settings)]
Time = Annotated[Clock, Depends(clock)]
Pipeline = Annotated[PipelineApi, Depends(pipeline)]
Users = Annotated[UserStore, Depends(users)]
Audit = Annotated[AuditLog, Depends(audit)]
Topics = Annotated[Sender, Depends(emitter)]
Feed = Annotated[LiveFeed, Depends(feed)]
Schema = Annotated[Callable[[], etree.XMLSchema], Depends(schema)]
Throttled = Annotated[Throttle, Depends(throttle)]
Policies = Annotated[PolicyTable, Depends(policies)]
Approvals = Annotated[ApprovalBook, Depends(approvals)]
Master = Annotated[MasterTable, Depends(master)]
Sessions = Annotated[SessionStore, Depends(sessions)]
Uploads = Annotated[StagedUploads, Depends(uploads)]
Oidc = Annotated[OidcClient | None, Depends(oidc)]


def secret(config: Settings) -> bytes:
    """The key of sessions and CSRF tokens; read when used, so the app can be built without it."""
    return config.secret()


Secret = Annotated[bytes, Depends(secret)]


# -- who asks ----------------------------------------------------------------------------------


class SignInRequired(Exception):
    """No valid session: the visitor is sent to the sign-in page, then back."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


@dataclass(frozen=True)
class Visit:
    """The signed-in person of a request, and the CSRF token their forms carry."""

    person: Person
    session: Session
    csrf: str


async def visit(request: Request, people: Users, kept: Sessions, key: Secret, at: Time) -> Visit:
    """The person of the request's live session, or ``SignInRequired``.

    A local person is read again on every request: one removed, or whose roles
    changed since they signed in, has no session any more (it is ended here, if
    the tool that changed them did not end it already). A company sign-in's
    roles are those its groups gave at sign-in, for at most the session's lifetime.
    """
    session = await kept.find(request.cookies.get(SESSION_COOKIE), at.now())
    person = session.person if session else None
    if session is not None and session.source is SessionSource.LOCAL:
        person = await people.get(session.name)
        if person is None or person.roles != session.roles:
            await kept.end(session.key)
            person = None
    if session is None or person is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return Visit(person, session, csrf_token(session.key, key))


Visitor = Annotated[Visit, Depends(visit)]


async def csrf_checked(who: Visitor, key: Secret, csrf: Annotated[str, Form(max_length=200)] = "") -> Visit:
    """The visit of a form that changes something, when the form carries the session's CSRF token."""
    if not csrf_ok(csrf, who.session.key, key):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or wrong: reload the page"
        )
    return who


def needs(role: PersonRole) -> Callable[[Visit], Awaitable[Visit]]:
    """A dependency: the visit of a checked form whose person holds ``role``."""

    async def holds(who: Annotated[Visit, Depends(csrf_checked)]) -> Visit:
        if not who.person.can(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the role {role.value}")
        return who

    return holds


as_anyone = needs(PersonRole.VIEWER)
as_reviewer = needs(PersonRole.REVIEWER)
as_lead = needs(PersonRole.COMPLIANCE_LEAD)
Anyone = Annotated[Visit, Depends(as_anyone)]
Reviewer = Annotated[Visit, Depends(as_reviewer)]
Lead = Annotated[Visit, Depends(as_lead)]


# -- what a page is about ----------------------------------------------------------------------


def vin_in_path(vin: str) -> str:
    """The VIN of the path as the pipeline spells it: letters and digits, upper case."""
    vin = vin.strip().upper()
    if not 1 <= len(vin) <= VIN_MAX or not vin.isalnum():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "vin: letters and digits only, at most 32")
    return vin


Vin = Annotated[str, Depends(vin_in_path)]


class Unanswered:
    """The reads of one page the pipeline did not answer: the page shows what it has and says what is missing.

    A read made outside ``read`` that fails reaches the app's handler for
    ``PipelineUnavailable`` instead (503): a download or a decision has nothing to show without it.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []

    async def read(self, call: Awaitable[T], fallback: T) -> T:
        try:
            return await call
        except PipelineUnavailable as exc:
            self.problems.append(str(exc))
            return fallback

    @property
    def problem(self) -> str | None:
        return "; ".join(self.problems) or None


Reads = Annotated[Unanswered, Depends(Unanswered)]
