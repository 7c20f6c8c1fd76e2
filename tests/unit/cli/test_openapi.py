"""The services' OpenAPI documents say what the endpoints take and answer, so clients and fuzzers can learn them."""

from __future__ import annotations

from typing import Any

import pytest

from services.archive.app import create_app as archive_app
from services.intake.app import create_app as intake_app
from services.status.app import create_app as status_app
from services.validation.app import create_app as validation_app
from services.workspace.app import create_app as workspace_app

pytestmark = pytest.mark.unit


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for step in ref.removeprefix("#/").split("/"):
        node = node[step]
    assert isinstance(node, dict)
    return node


@pytest.mark.parametrize(
    ("path", "model"),
    [("/v1/builds", "BuildRecord"), ("/v1/approvals", "Approval"), ("/v1/reviews", "Review")],
)
def test_every_intake_post_declares_its_body_and_its_refusals(path: str, model: str) -> None:
    document = intake_app().openapi()
    post = document["paths"][path]["post"]
    body = post["requestBody"]
    assert body["required"] is True
    one, many = body["content"]["application/json"]["schema"]["anyOf"]
    assert one["$ref"] == many["items"]["$ref"] == f"#/components/schemas/{model}"
    assert "vin" in resolve(document, one["$ref"])["properties"] or model == "Approval"
    assert {"202", "401", "403", "413", "422"} <= set(post["responses"])
    for ref in _refs(document):
        resolve(document, ref)  # every $ref of the document resolves


def test_the_archive_says_it_answers_xml_not_json() -> None:
    document = archive_app().openapi()
    answers = document["paths"]["/v1/certificates/{vin}"]["get"]["responses"]
    assert list(answers["200"]["content"]) == ["application/xml"]
    assert {"401", "404"} <= set(answers)


def test_status_and_validation_declare_the_401_and_404_they_answer() -> None:
    status, validation = status_app().openapi()["paths"], validation_app().openapi()["paths"]
    for paths in (status, validation):
        assert "503" in paths["/healthz"]["get"]["responses"]
        for path in paths.keys() - {"/healthz"}:
            assert "401" in paths[path]["get"]["responses"], path
    assert "404" in status["/v1/records/{vin}"]["get"]["responses"]
    assert "404" in validation["/v1/pending/{vin}"]["get"]["responses"]
    assert "503" in status["/v1/worklist"]["get"]["responses"]


def test_the_workspace_declares_its_redirects_downloads_and_event_stream_as_they_answer() -> None:
    paths = workspace_app().openapi()["paths"]
    for path in ("/signin", "/signout", "/records/{vin}/review", "/rollout"):
        assert "303" in paths[path]["post"]["responses"] and "200" not in paths[path]["post"]["responses"], (
            path
        )
    assert "303" in paths["/records"]["get"]["responses"]
    answers = paths["/records/{vin}/certificate.xml"]["get"]["responses"]
    assert list(answers["200"]["content"]) == ["application/xml"] and "404" in answers
    assert list(paths["/live"]["get"]["responses"]["200"]["content"]) == ["text/event-stream"]
    assert "503" in paths["/healthz"]["get"]["responses"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
