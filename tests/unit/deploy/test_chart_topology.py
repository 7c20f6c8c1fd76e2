"""The chart's Kafka topology (deploy/helm/ecoc/files/kafka.json) is what the code makes and the ACL file allows."""

from __future__ import annotations

import json

import pytest

from deploy.helm.topology import FOLLOWS_SETTING, TOPOLOGY_FILE, render, retention_ms, topology
from deploy.local.cluster import MIN_INSYNC, REPLICATION, principals
from shared import topics
from shared.kafka import wanted_topics
from shared.settings import CocSettings

pytestmark = pytest.mark.unit


def test_the_charts_topology_file_is_generated_from_the_current_code_and_acls() -> None:
    assert TOPOLOGY_FILE.read_text() == render(), (
        "deploy/helm/ecoc/files/kafka.json is stale: run `.venv/bin/python -m deploy.helm.topology`"
    )


def test_every_topic_the_services_make_is_there_with_its_partitions_compaction_and_replicas() -> None:
    held = {t["name"]: t for t in json.loads(TOPOLOGY_FILE.read_text())["topics"]}
    settings = CocSettings(topic_partitions=9, topic_replication=REPLICATION, topic_min_insync=MIN_INSYNC)
    made = {t.name: t for t in wanted_topics(settings)}
    assert set(held) == set(made) >= {*topics.ALL, *map(topics.dlq, topics.ALL)}
    for name, topic in made.items():
        partitions = held[name]["partitions"]
        assert (9 if partitions == FOLLOWS_SETTING else partitions) == topic.num_partitions
        assert held[name]["replicas"] == 3 and held[name]["config"]["min.insync.replicas"] == "2"
        compacted = held[name]["config"].get("cleanup.policy") == "compact"
        assert compacted == (name in topics.COMPACTED)
        # what is not compacted is kept as long as the local brokers keep it (7 days)
        assert compacted or held[name]["config"]["retention.ms"] == str(retention_ms()) == str(
            168 * 3600 * 1000
        )


def test_every_principal_has_the_rights_of_the_acl_file() -> None:
    assert topology()["principals"] == principals()
    assert json.loads(TOPOLOGY_FILE.read_text())["principals"] == principals()
