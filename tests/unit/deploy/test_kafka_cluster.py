"""`coc stack up --brokers 3`: three nodes on their own ports, secured, the mode remembered, each service its principal."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deploy.local import cluster, supervise
from deploy.local.cluster import ClusterPaths, broker_count, forget_brokers, nodes, remember_brokers
from deploy.local.infra import stack_specs
from deploy.local.layout import PidRecord, ProcessSpec, StackError, StackPaths
from deploy.local.settings import StackSettings
from shared.kafka import LOCAL_CLUSTER_FILE, client_options, local_cluster
from shared.settings import CocSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackSettings:
    monkeypatch.delenv("COC_STACK_BROKERS", raising=False)
    return StackSettings(
        _env_file=None,
        state_dir=tmp_path / "state",
        kafka_bootstrap="127.0.0.1:29092",
        kafka_controller_port=29093,
    )


def test_the_tools_and_the_stack_name_the_same_client_file() -> None:
    assert cluster.CLIENT_FILE == LOCAL_CLUSTER_FILE


def test_each_node_listens_on_its_own_ports_a_hundred_apart(settings: StackSettings) -> None:
    found = [(n.name, n.client_port, n.internal_port, n.controller_port) for n in nodes(settings, 3)]
    assert found == [
        ("kafka-1", 29092, 29094, 29093),
        ("kafka-2", 29192, 29194, 29193),
        ("kafka-3", 29292, 29294, 29293),
    ]


def test_one_broker_stays_the_default_and_three_are_remembered_until_down(settings: StackSettings) -> None:
    assert [spec.name for spec in stack_specs(settings)] == ["ferretdb", "kafka"]
    remember_brokers(settings, 3)
    assert broker_count(settings) == 3
    specs = stack_specs(settings)
    assert [spec.name for spec in specs] == ["ferretdb", "kafka-1", "kafka-2", "kafka-3"]
    assert [spec.wait for spec in specs[1:]] == [False, False, True]  # a quorum answers once two run
    assert specs[-1].ready is not None and specs[1].ready is None
    forget_brokers(settings)
    assert broker_count(settings) == 1


def test_switching_the_broker_count_of_a_running_stack_is_refused(settings: StackSettings) -> None:
    remember_brokers(settings, 3)
    paths = StackPaths.of(settings)
    paths.pids.mkdir(parents=True)
    paths.pid_file("kafka-2").write_text("{}")
    with pytest.raises(StackError, match="coc stack down"):
        remember_brokers(settings, 1)


def test_a_nodes_configuration_secures_every_listener_and_enforces_acls(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "_format", lambda *_args: None)  # no JVM here
    files = ClusterPaths(StackPaths.of(settings))
    members = nodes(settings, 3)
    cluster.prepare_node(settings, files, members, members[1])
    config = dict(
        line.split("=", 1)
        for line in files.config(members[1]).read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    assert config["node.id"] == "2"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:29093,2@127.0.0.1:29193,3@127.0.0.1:29293"
    assert config["listener.security.protocol.map"] == "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
    assert config["listeners"].startswith("CLIENT://127.0.0.1:29192,INTERNAL://127.0.0.1:29194,")
    assert config["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:broker;User:admin"
    assert config["unclean.leader.election.enable"] == "false"
    assert config["ssl.principal.mapping.rules"] == "RULE:^CN=([a-zA-Z0-9._-]+)(,.*)?$/$1/,DEFAULT"
    for secret in (files.password("admin"), files.password("intake"), files.keystore, files.ca_key):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    password = files.password("admin").read_text().strip()
    assert len(password) >= 32
    assert password not in files.config(members[1]).read_text()
    assert password not in files.client_file.read_text()


def test_a_service_in_the_cluster_gets_its_own_principal_and_password_file_never_the_password(
    settings: StackSettings,
) -> None:
    assert cluster.service_kafka_env(settings, "signing") == {}
    remember_brokers(settings, 3)
    env = cluster.service_kafka_env(settings, "signing")
    assert env["COC_KAFKA_USERNAME"] == "signing"
    assert env["COC_KAFKA_PASSWORD_FILE"].endswith("kafka-cluster/secrets/signing.password")
    assert env["COC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["COC_KAFKA_BOOTSTRAP"] == "127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292"
    assert env["COC_KAFKA_MAKE_TOPICS"] == "false"
    assert (env["COC_TOPIC_REPLICATION"], env["COC_TOPIC_MIN_INSYNC"]) == ("3", "2")
    assert not any("PASSWORD=" in f"{k}={v}" for k, v in env.items())


def test_tools_reach_the_local_cluster_as_admin_unless_security_is_set(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "_format", lambda *_args: None)
    files = ClusterPaths(StackPaths.of(settings))
    cluster.prepare_node(settings, files, nodes(settings, 3), nodes(settings, 3)[0])
    tool = local_cluster(
        CocSettings(_env_file=None, state_dir=settings.state_dir, kafka_bootstrap="127.0.0.1:29092")
    )
    assert tool.kafka_security_protocol == "SASL_SSL"
    assert tool.kafka_username == "admin"
    assert tool.kafka_bootstrap == "127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292"
    assert (tool.topic_replication, tool.topic_min_insync) == (3, 2)
    options = client_options(tool)
    assert options["sasl_plain_password"] == files.password("admin").read_text().strip()
    explicit = CocSettings(_env_file=None, state_dir=settings.state_dir, kafka_security_protocol="PLAINTEXT")
    assert client_options(explicit) == {"bootstrap_servers": "127.0.0.1:9092"}


def test_up_starts_the_nodes_before_waiting_for_any_then_makes_topics_and_acls_once_all_answer(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []

    def node(k: int) -> ProcessSpec:
        return ProcessSpec(
            name=f"kafka-{k}",
            argv=(),
            addresses=(),
            health=lambda: False,
            wait=k == 3,
            ready=(lambda: events.append("topics and acls")) if k == 3 else None,
        )

    def start(spec: ProcessSpec, _paths: StackPaths, _out: object) -> PidRecord:
        events.append(f"start {spec.name}")
        return PidRecord(spec.name, 1, None, 0.0, (), ())

    monkeypatch.setattr(supervise, "install", lambda *_args: None)
    monkeypatch.setattr(supervise, "stack_specs", lambda _settings: [node(1), node(2), node(3)])
    monkeypatch.setattr(supervise, "_start", start)
    monkeypatch.setattr(supervise, "_wait_healthy", lambda spec, *_args: events.append(f"wait {spec.name}"))
    supervise.up(settings, out=lambda _line: None)
    assert events == [
        "start kafka-1",
        "start kafka-2",
        "start kafka-3",
        "wait kafka-3",
        "wait kafka-1",
        "wait kafka-2",
        "topics and acls",
    ]
