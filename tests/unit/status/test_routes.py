"""The worklist endpoint's parameters: checked before any read, with errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.status import routes
from services.status.worklist import WorklistQuery
from shared.auth import Authenticator, Role
from shared.contracts.findings import Owner

pytestmark = pytest.mark.unit

TOKEN = "viewer-token"


class FakeStore:
    async def readiness(self) -> dict[str, Any]:
        return {}


class FakeWorklists:
    def __init__(self) -> None:
        self.queries: list[WorklistQuery] = []

    async def page(self, query: WorklistQuery) -> dict[str, Any]:
        self.queries.append(query)
        return {"owner": query.owner.value, "items": [], "total": 0, "page": query.page, "size": query.size}


@pytest.fixture
def client_and_worklists() -> tuple[TestClient, FakeWorklists]:
    worklists = FakeWorklists()
    app = FastAPI()
    auth = Authenticator({Role.VIEWER: TOKEN})
    app.include_router(routes.router(FakeStore(), worklists, auth))  # type: ignore[arg-type]
    return TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}), worklists


def test_worklist_passes_owner_filters_and_page_to_the_view(
    client_and_worklists: tuple[TestClient, FakeWorklists],
) -> None:
    client, worklists = client_and_worklists
    answer = client.get(
        "/v1/worklist",
        params={
            "owner": "production",
            "group": "CHR",
            "code": "MASS",
            "min_age_s": 60,
            "page": 3,
            "size": 200,
        },
    )
    assert answer.status_code == 200
    assert worklists.queries == [WorklistQuery(Owner.PRODUCTION, "CHR", "MASS", 60, 3, 200)]
    client.get("/v1/worklist", params={"owner": "compliance"})
    assert worklists.queries[-1] == WorklistQuery(Owner.COMPLIANCE, None, None, None, 1, 50)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"owner": "sales"}, "owner"),
        ({}, "owner"),
        ({"owner": "production", "size": 201}, "size"),
        ({"owner": "production", "size": 0}, "size"),
        ({"owner": "production", "page": 0}, "page"),
        ({"owner": "production", "min_age_s": -1}, "min_age_s"),
    ],
)
def test_worklist_refuses_a_bad_parameter_naming_it(
    client_and_worklists: tuple[TestClient, FakeWorklists], params: dict[str, Any], field: str
) -> None:
    client, worklists = client_and_worklists
    answer = client.get("/v1/worklist", params=params)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["query", field]]
    assert worklists.queries == []
