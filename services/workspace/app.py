"""Workspace: wiring only."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from lxml import etree

from services.workspace import headers, routes, subscribers, words
from services.workspace.adapters import sessions as session_store
from services.workspace.adapters.audit import AuditLog
from services.workspace.adapters.oidc import OidcClient
from services.workspace.adapters.pipeline import PipelineApi
from services.workspace.adapters.users import UserStore
from services.workspace.approvals import ApprovalBook
from services.workspace.destinations import live_cells
from services.workspace.identity import Throttle
from services.workspace.live import LiveFeed
from services.workspace.reissue.store import JobStore
from services.workspace.reissue.worker import Worker
from services.workspace.routes.answers import templates
from services.workspace.routes.deps import Workspace
from services.workspace.routes.reissue import Reissue
from services.workspace.routes.views import board_view
from services.workspace.settings import WorkspaceSettings
from shared import topics
from shared.auth import load_tokens
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import Review
from shared.contracts.masterdata import MasterDataChange
from shared.contracts.policies import PolicyChange
from shared.contracts.seals import SealRegistration
from shared.kafka import read_contracts
from shared.master_table import MasterTable
from shared.policy_table import PolicyTable
from shared.seal_table import SealTable
from shared.stage import Stage
from shared.xml import load_ivi_schema

STATIC = Path(__file__).parent / "static"
USERS, AUDIT = "workspace_users", "workspace_audit"


def create_app(settings: WorkspaceSettings | None = None) -> FastAPI:
    import os

    stage = Stage("workspace", settings or WorkspaceSettings())
    db = stage.database()
    api = PipelineApi(
        stage.settings.status_url,
        stage.settings.archive_url,
        stage.settings.url_of("validation"),
        load_tokens(stage.settings, dict(os.environ)),
        signing_url=stage.settings.url_of("signing"),
    )

    async def board() -> dict[str, Any]:
        readiness = await api.readiness()
        return {
            **board_view(readiness, stage.settings.plant_zone()).as_json(),
            "destinations": live_cells(readiness),
        }

    feed = LiveFeed(board, stage.settings.live_interval_s)

    @cache
    def schema() -> etree.XMLSchema:
        return load_ivi_schema(stage.settings.xsd_path())

    policies, approvals, master, seals = PolicyTable(), ApprovalBook(), MasterTable(), SealTable()

    async def read_tables() -> None:
        """The policy table and the approvals as their topics hold them now; the subscribers follow on."""
        for change, _record in await read_contracts(stage.settings, topics.POLICIES, PolicyChange):
            policies.add(change)
        for named, _record in await read_contracts(stage.settings, topics.MASTERDATA, MasterDataChange):
            master.add(named)
        for registration, _record in await read_contracts(stage.settings, topics.SEALS, SealRegistration):
            seals.add(registration)
        for approval, record in await read_contracts(stage.settings, topics.APPROVALS, Approval):
            at = dt.datetime.fromtimestamp(record.timestamp / 1000, dt.UTC)
            approvals.add(approval, at, subscribers.PUBLISHER)

    stage.publisher(topics.REVIEWS, Review)
    stage.publisher(topics.BUILDS, BuildRecord, "Re-issues after an approval correction")
    stage.publisher(topics.POLICIES, PolicyChange)
    stage.publisher(topics.MASTERDATA, MasterDataChange)
    stage.publisher(topics.APPROVALS, Approval, "Approval master data uploaded by the type-approval team")
    subscribers.register(stage, feed, policies, approvals, master, seals)

    async def has_secret() -> None:
        stage.settings.secret()  # refuse to start without one, with the message saying how

    stage.on_start.append(has_secret)
    stage.on_start.append(read_tables)
    stage.on_start.append(feed.start)
    stage.on_stop.append(feed.stop)
    stage.on_stop.append(api.close)
    oidc = company_sign_in(stage.settings)
    if oidc is not None:
        stage.on_stop.append(oidc.close)
    jobs = JobStore(db)  # re-issues after an approval correction, carried out by the worker
    worker = Worker(jobs, api, api, stage.emitter, rate=stage.settings.reissue_rate)
    stage.on_start.append(jobs.setup)
    stage.on_start.append(worker.start)
    stage.on_stop.append(worker.stop)
    sessions = session_store.SessionStore(db[session_store.COLLECTION], stage.settings.session_rules())
    workspace = Workspace(
        settings=stage.settings,
        users=UserStore(db[USERS], sessions=sessions),
        audit=AuditLog(db[AUDIT]),
        api=api,
        feed=feed,
        emitter=stage.emitter,
        schema=schema,
        throttle=Throttle(),
        policies=policies,
        approvals=approvals,
        master=master,
        seals=seals,
        sessions=sessions,
        oidc=oidc,
    )
    app = stage.asgi(docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    routes.include(app, workspace)
    app.state.reissue = Reissue(jobs, worker)
    words.install(templates().env, stage.settings.plant_zone())
    headers.install(app, stage.settings)
    return app


def company_sign_in(settings: WorkspaceSettings) -> OidcClient | None:
    """The client of the company's OpenID provider when the settings name one (its secret read now: fail early)."""
    if not settings.oidc_enabled():
        return None
    assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_url
    return OidcClient(
        settings.oidc_issuer, settings.oidc_client_id, settings.oidc_secret(), settings.oidc_redirect_url
    )
