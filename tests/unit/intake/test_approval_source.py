"""Approvals posted to intake's API carry their source: the token that sent them, never a name in the body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services.intake import routes
from services.intake.facets import BuildFacets
from services.intake.settings import IntakeSettings
from shared import topics
from shared.auth import Authenticator, Role
from shared.contracts import Approval
from shared.contracts.approvals import master_data_sha256
from shared.ivi import IviSchema
from shared.ivi_import import import_document
from shared.stage import Stage

pytestmark = pytest.mark.unit

TOKEN = "type-approval-token"


def test_a_posted_approval_is_published_with_the_tokens_name_as_its_source(
    schema: IviSchema, xsd_path: Path
) -> None:
    approval = import_document((xsd_path.parent / "specimen-M1-CHR.xml").read_bytes(), schema)[0]
    stage = Stage("intake", IntakeSettings())
    sent: list[tuple[str, BaseModel, str]] = []

    async def send(topic: str, model: BaseModel, *, key: str, correlation_id: str, **_: Any) -> None:
        sent.append((topic, model, key))

    stage.emitter.send = send  # type: ignore[method-assign]
    app = FastAPI()
    app.include_router(
        routes.router(stage, Authenticator({Role.TYPE_APPROVAL: TOKEN}), BuildFacets.of(schema))
    )
    body = approval.model_dump(mode="json")
    body["source"] = {"by": "Someone Else", "via": "workspace", "at": "2026-12-01T00:00:00Z"}
    answer = TestClient(app).post(
        "/v1/approvals",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 202
    ((topic, published, key),) = sent
    assert isinstance(published, Approval) and published.source is not None
    assert (topic, key) == (topics.APPROVALS, approval.key)
    assert (published.source.by, published.source.via) == ("type-approval token", "intake API")
    assert master_data_sha256(published) == master_data_sha256(approval)
