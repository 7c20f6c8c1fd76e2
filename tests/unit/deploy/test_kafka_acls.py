"""The ACL data (deploy/kafka/acls.json) is what each service's code reads, writes and joins: it cannot drift."""

from __future__ import annotations

import json

import pytest

from deploy.local.cluster import ACL_FILE, GROUP, READ, TOPIC, WRITE, Acl, acl_entries, principals
from deploy.local.services import SERVICES
from services.launch import service_app
from shared import topics

pytestmark = pytest.mark.unit


def used_by_code(name: str) -> dict[str, list[str]]:
    """The topics a service's stage subscribes to and declares for publishing, and its consumer groups."""
    stage = service_app(name).state.stage
    return {
        "read": sorted({loop.subscription.topic for loop in stage.loops}),
        "write": sorted(stage.published_topics),
        "groups": sorted({loop.subscription.group_id for loop in stage.loops if loop.subscription.group_id}),
    }


@pytest.mark.parametrize("name", SERVICES)
def test_each_services_acl_entry_is_exactly_what_its_code_reads_writes_and_joins(name: str) -> None:
    assert principals()[name] == used_by_code(name)


def test_the_acl_file_names_every_service_and_only_the_mes_besides() -> None:
    table = principals()
    assert set(table) == {*SERVICES, "mes"}
    assert table["mes"] == {"read": [], "write": [topics.BUILDS], "groups": []}
    assert json.loads(ACL_FILE.read_text())["about"]


def test_every_topic_named_in_the_acls_is_a_pipeline_topic_or_its_dead_letters() -> None:
    known = {*topics.ALL, *(topics.dlq(t) for t in topics.ALL)}
    named = {t for entry in principals().values() for key in ("read", "write") for t in entry[key]}
    assert named <= known


def test_signing_may_read_rendered_and_write_signed_but_nothing_else() -> None:
    acls = [acl for acl in acl_entries(principals()) if acl.principal == "User:signing"]
    assert Acl("User:signing", TOPIC, topics.RENDERED, READ) in acls
    assert Acl("User:signing", TOPIC, topics.SIGNED, WRITE) in acls
    assert Acl("User:signing", GROUP, f"coc-signing.{topics.RENDERED}", READ) in acls
    written = {acl.resource for acl in acls if acl.operation == WRITE}
    assert written == {topics.SIGNED, topics.STATUS, topics.dlq(topics.RENDERED), topics.dlq(topics.SEALS)}
    assert not any(acl.resource == topics.BUILDS for acl in acls)
