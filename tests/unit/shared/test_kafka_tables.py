"""Reading a table topic whole is bounded, and consumers learn of a new leader within seconds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

import shared.kafka
from shared.kafka import TableStalled, consumer_options, read_to_end
from shared.settings import CocSettings

pytestmark = pytest.mark.unit

TOPIC = "coc.approvals.v1"
partitions_of_real = shared.kafka.partitions_of
PARTITION = TopicPartition(TOPIC, 0)


def settings_of(tmp_path: Path) -> CocSettings:
    return CocSettings(_env_file=None, state_dir=tmp_path)


class TableConsumer:
    """A consumer of a one-partition topic holding three records; ``stalls`` ones never hand any over."""

    made: list[TableConsumer]
    stalls = 0
    closing_s = 0.0  # how long stop() takes (over TLS: until the broker answers close_notify)

    def __init__(self, **options: Any) -> None:
        self.stalled = len(self.made) < self.stalls
        self.position_at, self.stopped = 0, False
        self.made.append(self)

    async def start(self) -> None:
        return None

    def assign(self, partitions: list[TopicPartition]) -> None:
        assert partitions == [PARTITION]

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.position_at = 0

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {PARTITION: 3}

    async def position(self, partition: TopicPartition) -> int:
        return self.position_at

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int) -> dict[TopicPartition, list[str]]:
        if self.stalled:  # as seen on the cluster: no record, no error, poll after poll
            await asyncio.sleep(min(timeout_ms / 1000, 0.06))
            return {}
        self.position_at = 3
        return {PARTITION: ["a", "b", "c"]}

    async def stop(self) -> None:
        await asyncio.sleep(self.closing_s)
        self.stopped = True


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> type[TableConsumer]:
    async def partitions_of(settings: CocSettings, topic: str) -> list[int]:
        return [0]

    TableConsumer.made, TableConsumer.stalls, TableConsumer.closing_s = [], 0, 0.0
    monkeypatch.setattr(shared.kafka, "AIOKafkaConsumer", TableConsumer)
    monkeypatch.setattr(shared.kafka, "partitions_of", partitions_of)
    monkeypatch.setattr(shared.kafka, "TABLE_STALL_S", 0.05)
    return TableConsumer


async def test_a_read_that_gets_nowhere_is_made_again_with_a_new_consumer(
    tmp_path: Path, table: type[TableConsumer], caplog: pytest.LogCaptureFixture
) -> None:
    table.stalls = 2

    records = await asyncio.wait_for(read_to_end(settings_of(tmp_path), TOPIC), 10)

    assert records == ["a", "b", "c"]
    assert len(table.made) == 3 and all(c.stopped for c in table.made)
    assert "coc.approvals.v1: no progress for 0s reading its records" in caplog.text


async def test_a_table_that_never_comes_is_refused_after_the_last_attempt(
    tmp_path: Path, table: type[TableConsumer]
) -> None:
    table.stalls = 99

    with pytest.raises(TableStalled, match=r"coc\.approvals\.v1: no progress"):
        await asyncio.wait_for(read_to_end(settings_of(tmp_path), TOPIC), 20)

    assert len(table.made) == shared.kafka.TABLE_ATTEMPTS and all(c.stopped for c in table.made)


async def test_the_records_are_returned_without_waiting_for_the_connections_to_close(
    tmp_path: Path, table: type[TableConsumer], monkeypatch: pytest.MonkeyPatch
) -> None:
    table.closing_s = 30.0  # Python's ssl_shutdown_timeout, waited out when the broker does not answer
    monkeypatch.setattr(shared.kafka, "TABLE_CLOSE_S", 0.05)

    records = await asyncio.wait_for(read_to_end(settings_of(tmp_path), TOPIC), 5)

    assert records == ["a", "b", "c"]
    assert len(table.made) == 1 and not table.made[0].stopped  # still closing, on its own


class UnsettledAdmin:
    """An admin client whose topic is listed but described with LEADER_NOT_AVAILABLE ``unsettled`` times."""

    unsettled = 0
    described = 0

    def __init__(self, **options: Any) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def list_topics(self) -> list[str]:
        return [TOPIC]

    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        UnsettledAdmin.described += 1
        if UnsettledAdmin.described <= UnsettledAdmin.unsettled:
            return [{"topic": TOPIC, "error_code": 5, "partitions": []}]
        return [{"topic": TOPIC, "error_code": 0, "partitions": [{"partition": 1}, {"partition": 0}]}]


async def test_a_table_topic_described_with_an_error_is_asked_again_never_taken_for_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    UnsettledAdmin.unsettled, UnsettledAdmin.described = 2, 0
    monkeypatch.setattr(shared.kafka, "AIOKafkaAdminClient", UnsettledAdmin)
    monkeypatch.setattr(shared.kafka, "METADATA_RETRY_S", 0.01)

    numbers = await asyncio.wait_for(shared.kafka.partitions_of(settings_of(tmp_path), TOPIC), 5)

    assert numbers == [0, 1] and UnsettledAdmin.described == 3


async def test_a_table_topic_never_described_whole_stops_the_start_instead_of_an_empty_table(
    tmp_path: Path, table: type[TableConsumer], monkeypatch: pytest.MonkeyPatch
) -> None:
    UnsettledAdmin.unsettled, UnsettledAdmin.described = 10**9, 0
    monkeypatch.setattr(shared.kafka, "AIOKafkaAdminClient", UnsettledAdmin)
    monkeypatch.setattr(shared.kafka, "partitions_of", partitions_of_real)
    monkeypatch.setattr(shared.kafka, "METADATA_RETRY_S", 0.01)

    with pytest.raises(TableStalled, match="listing its partitions"):
        await asyncio.wait_for(read_to_end(settings_of(tmp_path), TOPIC), 10)

    assert table.made == []  # no reading of a table whose partitions are not known


async def test_consumers_renew_their_metadata_within_seconds_so_a_moved_leader_is_found(
    tmp_path: Path,
) -> None:
    consumer = AIOKafkaConsumer(**consumer_options(settings_of(tmp_path)))
    try:
        assert consumer._client._metadata_max_age_ms <= 10_000  # aiokafka's own: five minutes
    finally:
        await consumer.stop()
