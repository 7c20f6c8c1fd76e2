"""Intake's HTTP entry under hostile and careless bodies: 4xx with the field named, nothing half-published."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devkit.samples import generate
from services.intake import routes
from services.intake.facets import BuildFacets
from services.intake.settings import IntakeSettings
from shared.auth import Authenticator, Role
from shared.ivi import IviSchema
from shared.stage import Stage
from shared.telemetry import current_trace_id

pytestmark = pytest.mark.unit

TOKEN = "mes-token"
JSON = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []

    async def forward(_emitter: Any, record: Any) -> None:
        sent.append(record.record_id)

    monkeypatch.setattr(routes, "forward", forward)
    return sent


@pytest.fixture
def client(schema: IviSchema) -> TestClient:
    settings = IntakeSettings(max_request_bytes=200_000, max_request_records=5, max_record_bytes=2_000)
    app = FastAPI()
    auth = Authenticator({Role.MES: TOKEN})
    app.include_router(routes.router(Stage("intake", settings), auth, BuildFacets.of(schema)))
    return TestClient(app)


def build_json(n: int = 0, **change: Any) -> dict[str, Any]:
    build = generate(n + 1, seed=9, defect_share=0.0).builds[n]
    return {**build.model_dump(mode="json"), **change}


def problems(answer: Any) -> list[dict[str, Any]]:
    return list(answer.json()["detail"]["problems"])


def test_a_good_list_is_published_whole(client: TestClient, published: list[str]) -> None:
    answer = client.post("/v1/builds", content=json.dumps([build_json(0), build_json(1)]), headers=JSON)
    assert answer.status_code == 202 and len(published) == 2


def test_each_posted_record_is_forwarded_in_a_trace_of_its_own(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its published messages carry the trace and its `received` status event names it."""
    traces: list[str | None] = []

    async def forward(_emitter: Any, _record: Any) -> None:
        traces.append(current_trace_id())

    monkeypatch.setattr(routes, "forward", forward)
    answer = client.post("/v1/builds", content=json.dumps([build_json(0), build_json(1)]), headers=JSON)
    assert answer.status_code == 202
    assert len(traces) == 2 and all(t and len(t) == 32 for t in traces) and traces[0] != traces[1]


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_parsed(
    client: TestClient, published: list[str]
) -> None:
    answer = client.post("/v1/builds", content=b"[" + b" " * 300_000 + b"]", headers=JSON)
    assert answer.status_code == 413 and "larger than 200000 bytes" in problems(answer)[0]["message"]
    assert published == []


def test_a_body_that_is_not_utf8_is_a_422_naming_the_byte(client: TestClient, published: list[str]) -> None:
    answer = client.post("/v1/builds", content=b'{"vin": "\xff\xfe"}', headers=JSON)
    assert answer.status_code == 422 and problems(answer)[0]["message"].startswith("not UTF-8")


def test_json_nested_deeper_than_the_stack_is_a_422(client: TestClient) -> None:
    answer = client.post("/v1/builds", content=b"[" * 5_000 + b"]" * 5_000, headers=JSON)
    assert answer.status_code == 422 and problems(answer)[0]["message"] == "JSON nested too deeply"


@pytest.mark.parametrize("ndjson", [False, True], ids=["json", "ndjson"])
def test_a_number_longer_than_python_reads_is_a_422_not_a_crash(client: TestClient, ndjson: bool) -> None:
    body = b'{"vin": "X", "revision": ' + b"9" * 5_000 + b"}"
    kind = "application/x-ndjson" if ndjson else "application/json"
    answer = client.post("/v1/builds", content=body, headers={**JSON, "Content-Type": kind})
    assert answer.status_code == 422 and problems(answer)[0]["message"] == "a JSON number too long to read"


def test_too_many_ndjson_records_are_refused_when_counted_not_after_parsing_all(client: TestClient) -> None:
    lines = b"\n".join([b"{}"] * 5 + [b"not json at all"] * 3)
    answer = client.post(
        "/v1/builds", content=lines, headers={**JSON, "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 422
    assert problems(answer) == [{"item": 6, "field": "(body)", "message": "more than 5 records"}]


def test_a_list_with_one_record_too_large_to_publish_publishes_none(
    client: TestClient, published: list[str]
) -> None:
    tyres = [{"axle": axle, "option": 1} for axle in range(1, 100)]
    huge = build_json(1, tyres=tyres)  # keeps the contract, too large for this intake's limit
    answer = client.post("/v1/builds", content=json.dumps([build_json(0), huge]), headers=JSON)
    assert answer.status_code == 413
    assert problems(answer)[0]["item"] == 2 and "bytes as published" in problems(answer)[0]["message"]
    assert published == []


def test_many_broken_records_get_a_bounded_answer(client: TestClient) -> None:
    answer = client.post("/v1/builds", content=json.dumps([{}] * 5), headers=JSON)
    assert answer.status_code == 422
    found = problems(answer)
    assert (
        len(found) == 21
        and found[-1]["message"].startswith("and ")
        and found[-1]["message"].endswith(" more problems")
    )
