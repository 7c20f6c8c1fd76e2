"""In-memory stand-ins for what the workspace's rooms depend on, and a site built from them for TestClient.

No broker, no database, no other service: each part replaces one dependency of
``services.workspace.routes.deps`` through ``app.dependency_overrides``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from lxml import etree
from pydantic import BaseModel

from services.workspace import headers, routes
from services.workspace.adapters.pipeline import Certificate, PipelineUnavailable
from services.workspace.adapters.sessions import SessionStore
from services.workspace.approvals import ApprovalBook
from services.workspace.identity import (
    AuditEntry,
    Person,
    PersonRole,
    SessionSource,
    Throttle,
    csrf_token,
    session_key,
)
from services.workspace.live import LiveFeed
from services.workspace.routes import deps
from services.workspace.routes.seals import seal_table
from services.workspace.settings import WorkspaceSettings
from services.workspace.upload.staged import StagedUploads
from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.master_table import MasterTable
from shared.policy_table import PolicyTable
from shared.seal_table import SealTable

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
SECRET = "a test secret of the workspace, long enough for HMAC"
PASSWORD = "the password of every test person"
# One person per role, each holding that role alone.
PEOPLE = {role: Person(f"Test {role.value}", frozenset({role})) for role in PersonRole}


@dataclass
class FakeClock:
    """Time that moves only when a test says so."""

    at: dt.datetime = T0
    ticks: float = 5_000.0

    def now(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)
        self.ticks += seconds


@dataclass
class FakePipeline:
    """The status, archive and validation APIs as dictionaries; ``down`` makes every read fail as a timeout would."""

    readiness_answer: dict[str, Any] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)  # owner or state → one page
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    waiting_requests: int = 0  # requests of waiting records for several keys (``waiting_on_many``)
    certificates: dict[str, Certificate] = field(default_factory=dict)
    evidence_zips: dict[str, bytes] = field(default_factory=dict)
    bases: dict[str, bytes] = field(default_factory=dict)  # imported base certificates by SHA-256
    facet_answer: dict[str, Any] = field(default_factory=dict)  # GET /v1/facets; {} as an older status
    defaults: dict[str, Any] = field(default_factory=dict)  # validation's GET /v1/policy-defaults
    seal_answer: dict[str, Any] | None = None  # signing's GET /v1/seal (the settings' seal)
    down: bool = False
    asked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _answer(self, value: Any) -> Any:
        if self.down:
            raise PipelineUnavailable("http://status.test did not answer: ConnectTimeout")
        return value

    async def readiness(self) -> dict[str, Any]:
        return dict(self._answer(self.readiness_answer))

    async def worklist(self, owner: str, **filters: Any) -> dict[str, Any]:
        self.asked.append((f"worklist:{owner}", filters))
        return dict(self._answer(self.lists.get(owner, {"owner": owner, "items": []})))

    async def records_in(self, state: str, **filters: Any) -> dict[str, Any]:
        self.asked.append((f"state:{state}", filters))
        return dict(self._answer(self.lists.get(state, {"state": state, "items": []})))

    async def facets(self) -> dict[str, Any]:
        return dict(self._answer(self.facet_answer))

    async def settings_seal(self) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._answer(self.seal_answer)
        return found

    async def record(self, vin: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._answer(self.records.get(vin))
        return found

    async def pending(self, vin: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._answer(self.received.get(vin))
        return found

    async def policy_defaults(self) -> dict[str, Any]:
        return dict(self._answer(self.defaults))

    async def waiting_on(self, approval_key: str) -> list[dict[str, Any]]:
        return list(self._answer(self.waiting.get(approval_key, [])))

    async def waiting_on_many(self, approval_keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        self.waiting_requests += 1
        return {key: list(self._answer(self.waiting.get(key, []))) for key in approval_keys}

    async def certificate(self, vin: str, revision: int | None = None) -> Certificate | None:
        found: Certificate | None = self._answer(self.certificates.get(vin))
        return found

    async def evidence(self, vin: str, revision: int | None = None) -> bytes | None:
        found: bytes | None = self._answer(self.evidence_zips.get(vin))
        return found

    async def base_certificate(self, sha256: str) -> bytes | None:
        found: bytes | None = self._answer(self.bases.get(sha256))
        return found


@dataclass
class FakeUsers:
    people: dict[str, Person] = field(default_factory=lambda: {p.name: p for p in PEOPLE.values()})

    async def get(self, name: str) -> Person | None:
        return self.people.get(name)

    async def verify(self, name: str, password: str) -> Person | None:
        return self.people.get(name) if password == PASSWORD else None


@dataclass
class FakeCollection:
    """The few MongoDB collection calls the session store makes, on a dictionary; ``writes`` counts the writes."""

    documents: dict[Any, dict[str, Any]] = field(default_factory=dict)
    writes: int = 0

    def _matches(self, document: dict[str, Any], query: Mapping[str, Any]) -> bool:
        return all(document.get(k) == v for k, v in query.items())

    async def insert_one(self, document: dict[str, Any]) -> None:
        self.writes += 1
        self.documents[document["_id"]] = dict(document)

    async def find_one(self, query: Mapping[str, Any]) -> dict[str, Any] | None:
        return next((dict(d) for d in self.documents.values() if self._matches(d, query)), None)

    def find(self, query: Mapping[str, Any]) -> Any:
        found = [dict(d) for d in self.documents.values() if self._matches(d, query)]

        async def cursor() -> Any:
            for document in found:
                yield document

        return cursor()

    async def update_one(self, query: Mapping[str, Any], update: Mapping[str, Any]) -> Any:
        self.writes += 1
        document = await self.find_one(query)
        if document is not None:
            self.documents[document["_id"]].update(update["$set"])
        return types.SimpleNamespace(matched_count=int(document is not None))

    async def delete_many(self, query: Mapping[str, Any]) -> Any:
        self.writes += 1
        gone = [k for k, d in self.documents.items() if self._matches(d, query)]
        for key in gone:
            del self.documents[key]
        return types.SimpleNamespace(deleted_count=len(gone))

    async def delete_one(self, query: Mapping[str, Any]) -> Any:
        self.writes += 1
        gone = next((k for k, d in self.documents.items() if self._matches(d, query)), None)
        if gone is not None:
            del self.documents[gone]
        return types.SimpleNamespace(deleted_count=int(gone is not None))


@dataclass
class FakeAudit:
    entries: list[AuditEntry] = field(default_factory=list)

    async def record(
        self, person: Person | str, action: str, target: str, change: Mapping[str, Any], at: dt.datetime
    ) -> AuditEntry:
        name = person.name if isinstance(person, Person) else person
        entry = AuditEntry(name, action, target, dict(change), at)
        self.entries.append(entry)
        return entry

    async def for_target(self, target: str, limit: int = 50) -> list[AuditEntry]:
        return [e for e in reversed(self.entries) if e.target == target][:limit]


@dataclass
class FakeSender:
    sent: list[tuple[str, BaseModel, str]] = field(default_factory=list)

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        self.sent.append((topic, model, key))


# The master data a site starts with: the sample groups the pages' tests use.
KNOWN = [
    MasterDataChange(
        kind=MasterKind.VEHICLE_GROUP,
        name=name,
        set_by="C. Lead",
        set_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )
    for name in ("KUDU", "RHINO")
]


@dataclass
class Site:
    """The workspace's rooms on a bare FastAPI app, every dependency a fake, and a client of it."""

    clock: FakeClock = field(default_factory=FakeClock)
    api: FakePipeline = field(default_factory=FakePipeline)
    users: FakeUsers = field(default_factory=FakeUsers)
    audit: FakeAudit = field(default_factory=FakeAudit)
    sender: FakeSender = field(default_factory=FakeSender)
    policies: PolicyTable = field(default_factory=PolicyTable)
    approvals: ApprovalBook = field(default_factory=ApprovalBook)
    master: MasterTable = field(default_factory=lambda: MasterTable(KNOWN))
    seals: SealTable = field(default_factory=SealTable)
    throttle: Throttle = field(default_factory=Throttle)
    schema: etree.XMLSchema | None = None
    last_cookies: str = ""  # the Set-Cookie header of the last form sent
    settings: WorkspaceSettings = field(
        default_factory=lambda: WorkspaceSettings(workspace_secret=SECRET, page_size=10)
    )

    def __post_init__(self) -> None:
        self.stored = FakeCollection()
        self.sessions = SessionStore(self.stored, self.settings.session_rules())  # type: ignore[arg-type]
        app = FastAPI()
        routes.include(app)
        headers.install(app, self.settings)  # as create_app does: the pages answer with their headers
        feed = LiveFeed(self.api.readiness, interval=1.0)
        parts: dict[Any, Any] = {
            deps.settings: self.settings,
            deps.clock: self.clock,
            deps.pipeline: self.api,
            deps.users: self.users,
            deps.audit: self.audit,
            deps.emitter: self.sender,
            deps.feed: feed,
            deps.schema: lambda: self.schema,
            deps.throttle: self.throttle,
            deps.policies: self.policies,
            deps.approvals: self.approvals,
            deps.master: self.master,
            seal_table: self.seals,
            deps.sessions: self.sessions,
            deps.oidc: None,
            deps.uploads: StagedUploads(),  # approval uploads between their dry run and publication
        }
        for dependency, fake in parts.items():
            app.dependency_overrides[dependency] = constant(fake)
        self.app = app
        self.client = TestClient(app, follow_redirects=False)

    def sign_in_as(self, person: Person, source: SessionSource = SessionSource.LOCAL) -> str:
        """Give the client ``person``'s session cookie, as a sign-in would; the CSRF token their forms carry."""
        token = asyncio.run(self.sessions.start(person, source, self.clock.now(), address="testclient"))
        self.client.cookies.set(deps.SESSION_COOKIE, token, domain="testserver.local")
        key = session_key(token)
        assert key is not None
        return csrf_token(key, self.settings.secret())


def constant(value: Any) -> Any:
    """A dependency that hands out ``value`` (a lambda's default argument would become a query parameter)."""

    def provide() -> Any:
        return value

    return provide
