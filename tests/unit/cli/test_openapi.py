"""The services' OpenAPI documents say what the endpoints take and answer, so clients and fuzzers can learn them."""

from __future__ import annotations

from typing import Any

import pytest

from services.archive.app import create_app as archive_app
from services.intake.app import create_app as intake_app

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


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
