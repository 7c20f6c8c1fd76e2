"""Every Kafka client's security comes from settings, through one function; the password only from its file."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiokafka import codec

import shared.kafka
from shared import topics
from shared.kafka import client_options, idempotent, make_producer, topic_configs, wanted_topics
from shared.settings import CocSettings

pytestmark = pytest.mark.unit


def settings_of(tmp_path: Path, **values: object) -> CocSettings:
    return CocSettings(_env_file=None, state_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_plaintext_clients_get_only_the_address(tmp_path: Path) -> None:
    assert client_options(settings_of(tmp_path, kafka_bootstrap="k1:9092,k2:9092")) == {
        "bootstrap_servers": "k1:9092,k2:9092"
    }


def test_sasl_ssl_clients_read_the_password_from_its_file_and_check_the_brokers_certificate(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "intake.password"
    secret.write_text("s3cret-from-file\n")
    options = client_options(
        settings_of(
            tmp_path, kafka_security_protocol="SASL_SSL", kafka_username="intake", kafka_password_file=secret
        )
    )
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("intake", "s3cret-from-file")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_missing_or_empty_password_file_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kafka_password_file is not set"):
        client_options(settings_of(tmp_path, kafka_security_protocol="SASL_SSL", kafka_username="x"))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ValueError, match=r"kafka_password_file: .* no password"):
        client_options(
            settings_of(
                tmp_path, kafka_security_protocol="SASL_SSL", kafka_username="x", kafka_password_file=empty
            )
        )


def test_an_unknown_security_protocol_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kafka_security_protocol"):
        settings_of(tmp_path, kafka_security_protocol="SASL_PLAINTEXT")


def test_producers_are_idempotent_unless_turned_off(tmp_path: Path) -> None:
    assert idempotent(settings_of(tmp_path))
    assert idempotent(settings_of(tmp_path, kafka_security_protocol="SSL"))
    assert not idempotent(settings_of(tmp_path, kafka_idempotence=False))


def test_the_producer_waits_for_all_replicas_and_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: dict[str, object] = {}
    monkeypatch.setattr(shared.kafka, "AIOKafkaProducer", lambda **kwargs: made.update(kwargs))
    make_producer(settings_of(tmp_path, kafka_security_protocol="SSL"), client_id="t")
    assert made["acks"] == "all"
    assert made["enable_idempotence"] is True
    assert made["security_protocol"] == "SSL"
    make_producer(settings_of(tmp_path, kafka_idempotence=False), client_id="t")
    assert made["enable_idempotence"] is False


def test_producers_compress_with_lz4_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: dict[str, object] = {}
    monkeypatch.setattr(shared.kafka, "AIOKafkaProducer", lambda **kwargs: made.update(kwargs))
    make_producer(settings_of(tmp_path), client_id="t")
    assert made["compression_type"] == "lz4"
    make_producer(settings_of(tmp_path, kafka_compression="none"), client_id="t")
    assert made["compression_type"] is None
    make_producer(settings_of(tmp_path, kafka_compression="gzip"), client_id="t")
    assert made["compression_type"] == "gzip"


def test_lz4_batches_round_trip_through_the_codec_aiokafka_uses() -> None:
    # aiokafka refuses to make an lz4 producer, and cannot read lz4 batches, without cramjam
    assert codec.has_lz4()
    document = b"<Certificate>" + b"<Item>M1</Item>" * 2_000 + b"</Certificate>"
    packed = codec.lz4_encode(document)
    assert len(packed) < len(document) / 10 and codec.lz4_decode(packed) == document


def test_every_topic_refuses_unclean_leaders_and_waits_for_min_insync(tmp_path: Path) -> None:
    assert topic_configs(settings_of(tmp_path, topic_min_insync=2)) == {
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
    }


def test_on_the_local_cluster_each_topic_has_one_leader_and_the_topics_take_the_brokers_in_turn(
    tmp_path: Path,
) -> None:
    settings = settings_of(tmp_path, topic_replication=3, topic_partitions=6)
    made = wanted_topics(settings, leaders=[1, 2, 3])
    leaders = []
    for topic in made:
        assert (topic.num_partitions, topic.replication_factor) == (-1, -1)
        replicas = {tuple(r) for r in topic.replica_assignments.values()}
        assert len(replicas) == 1  # every partition of the topic on the same three brokers, the same leader
        (placed,) = replicas
        assert sorted(placed) == [1, 2, 3]
        leaders.append(placed[0])
        wanted = 1 if topic.name in {topics.APPROVALS, topics.POLICIES, topics.MASTERDATA} else 6
        assert sorted(topic.replica_assignments) == list(range(wanted))
    assert leaders[:6] == [1, 2, 3, 1, 2, 3]
    assert max(leaders.count(b) for b in (1, 2, 3)) - min(leaders.count(b) for b in (1, 2, 3)) <= 1


def test_without_brokers_named_or_with_fewer_than_the_replication_kafka_places_the_partitions(
    tmp_path: Path,
) -> None:
    settings = settings_of(tmp_path, topic_replication=3, topic_partitions=6)
    for made in (wanted_topics(settings), wanted_topics(settings, leaders=[1, 2])):
        builds = next(t for t in made if t.name == topics.BUILDS)
        assert (builds.num_partitions, builds.replication_factor, builds.replica_assignments) == (6, 3, {})
