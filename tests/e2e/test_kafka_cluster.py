"""`coc stack up --brokers 3`: a secured three-broker cluster that refuses strangers and keeps each service to its topics.

A private stack on ports of its own (brokers 29092, 29192, 29292; controllers 29093,
29193, 29293; FerretDB 47017; services 28081-28088), so it never meets the default
private stack. Run with E2E_CLUSTER=1 (``make test-cluster``); not part of ``make test``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

from deploy.local.cluster import ClusterPaths, principals
from shared import topics
from shared.kafka import client_options
from shared.settings import CocSettings
from tests.e2e.helpers import PrivateStack, own_stack, sample_run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("E2E_CLUSTER"), reason="the cluster mode: set E2E_CLUSTER=1"),
]

CLUSTER_BUILDS = int(os.environ.get("E2E_CLUSTER_BUILDS", "300"))
OWN_PORTS = {
    "COC_KAFKA_BOOTSTRAP": "127.0.0.1:29092",
    "COC_KAFKA_CONTROLLER_PORT": "29093",
    "COC_MONGO_URL": "mongodb://127.0.0.1:47017",
    "COC_PORT_BASE": "28080",
}
BROKERS = ("127.0.0.1:29092", "127.0.0.1:29192", "127.0.0.1:29292")
PIPELINE_TOPICS = [*topics.ALL, *(topics.dlq(t) for t in topics.ALL)]


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[PrivateStack]:
    """``coc stack up --brokers 3`` on its own ports and state (``own_stack``).

    The test process's tools (devkit's publisher and watch) find the cluster's
    admin login in the state folder, as ``coc`` does: COC_STATE_DIR points there.
    """
    with (
        own_stack(request, "cluster", OWN_PORTS, "--brokers", "3") as stack,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("COC_STATE_DIR", str(stack.settings.state_dir))
        yield stack


def as_service(stack: PrivateStack, name: str) -> CocSettings:
    """The settings a service of the cluster runs with: its own principal and password file."""
    files = ClusterPaths(stack.paths)
    return CocSettings(
        _env_file=None,
        state_dir=stack.settings.state_dir,
        kafka_bootstrap=",".join(BROKERS),
        kafka_security_protocol="SASL_SSL",
        kafka_username=name,
        kafka_password_file=files.password(name),
        kafka_ca_file=files.ca_cert,
    )


async def test_the_admin_client_sees_three_brokers_and_every_topic_with_replication_three_and_min_insync_two(
    cluster: PrivateStack,
) -> None:
    admin = AIOKafkaAdminClient(**client_options(cluster.settings))  # the admin login from the state folder
    await admin.start()
    try:
        described = await admin.describe_cluster()
        assert sorted(b["node_id"] for b in described["brokers"]) == [1, 2, 3]
        found = {t["topic"]: t for t in await admin.describe_topics(PIPELINE_TOPICS)}
        assert set(found) == set(PIPELINE_TOPICS)
        for name, topic in found.items():
            assert {len(p["replicas"]) for p in topic["partitions"]} == {3}, name
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in PIPELINE_TOPICS]
        for response in await admin.describe_configs(resources):
            for _code, _message, _type, name, entries in response.resources:
                config = {entry[0]: entry[1] for entry in entries}
                assert config["min.insync.replicas"] == "2", name
                assert config["unclean.leader.election.enable"] == "false", name
                expected = "compact" if name in topics.COMPACTED else "delete"
                assert config["cleanup.policy"] == expected, name
    finally:
        await admin.close()


def test_stack_status_shows_each_broker_the_active_controller_and_no_under_replicated_partition(
    cluster: PrivateStack,
) -> None:
    result = cluster.coc("stack", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("kafka-")}
    assert sorted(rows) == ["kafka-1", "kafka-2", "kafka-3"]
    assert all("healthy" in row for row in rows.values()), rows
    assert "active controller: kafka-" in result.stdout
    assert "under-replicated partitions: none" in result.stdout


async def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(
    cluster: PrivateStack, tmp_path: Path
) -> None:
    stranger = AIOKafkaProducer(bootstrap_servers=BROKERS[0], request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(stranger.start(), 30)
    await stranger.stop()
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    impostor = as_service(cluster, "intake").model_copy(update={"kafka_password_file": wrong})
    producer = AIOKafkaProducer(**client_options(impostor), request_timeout_ms=5000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()


async def test_a_service_writing_or_reading_a_topic_not_its_own_is_refused(cluster: PrivateStack) -> None:
    producer = AIOKafkaProducer(
        **client_options(as_service(cluster, "intake")), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        await producer.send_and_wait(topics.ACCEPTED, b"{}", key=b"E2E-CLUSTER-PROBE")  # its own: allowed
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send_and_wait(topics.SIGNED, b"{}", key=b"E2E-CLUSTER-PROBE"), 30)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topics.SIGNED,
        **client_options(as_service(cluster, "render")),
        group_id=f"coc-render.{topics.VALIDATED}",
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(consumer.start(), 30)
    finally:
        await consumer.stop()


async def test_builds_go_through_to_archived_once_each_with_every_service_authenticated(
    cluster: PrivateStack,
) -> None:
    run = sample_run(CLUSTER_BUILDS, seed=2931, tag="K", defect_share=0.0)
    async with cluster.client() as stack:
        response = await stack.post_approvals(run.approvals)
        assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
        await stack.make_known(run.builds)
        records = await stack.publish_and_settle(list(run.builds), 600)
    states = Counter(record["state"] for record in records.values())
    assert states == Counter({"archived": len(run.builds)}), states
    rows = Counter((row["vin"], row["revision"]) for row in cluster.archive_rows(run.vins))
    assert set(rows) == {(b.vin, b.revision) for b in run.builds}
    assert set(rows.values()) == {1}, "a certificate archived twice"


def test_no_log_of_the_stack_holds_a_kafka_password(cluster: PrivateStack) -> None:
    files = ClusterPaths(cluster.paths)
    passwords = [files.password(name).read_text().strip() for name in ["admin", *principals()]]
    for log in cluster.paths.logs.rglob("*"):
        if log.is_file():
            text = log.read_text(errors="replace")
            assert not any(password in text for password in passwords), f"a password in {log}"
    for config in files.root.glob("*.properties"):
        assert not any(password in config.read_text() for password in passwords), config
    assert json.loads(files.client_file.read_text())["username"] == "admin"
