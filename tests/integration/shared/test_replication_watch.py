"""The replication reading of /metrics against the real local broker: every pipeline topic, none lagging."""

from __future__ import annotations

import time

import pytest

from shared import topics
from shared.observability.metrics import StageMetrics
from shared.observability.replication import OTHER, ReplicationWatch
from shared.settings import CocSettings

pytestmark = pytest.mark.integration


async def test_one_reading_counts_every_pipeline_topic_of_the_broker_with_no_partition_lagging(
    settings: CocSettings,
) -> None:
    metrics = StageMetrics("status", process=False)
    began = time.time()
    await ReplicationWatch(settings, metrics, interval_s=30).read_once()
    for topic in (topics.BUILDS, topics.STATUS, topics.dlq(topics.BUILDS)):
        assert (
            metrics.registry.get_sample_value("coc_kafka_under_replicated_partitions", {"topic": topic}) == 0
        )
    served = {
        labels["topic"]
        for family in metrics.registry.collect()
        for name, labels, *_ in family.samples
        if name == "coc_kafka_under_replicated_partitions"
    }
    assert served <= {*topics.ALL, *(topics.dlq(t) for t in topics.ALL), OTHER}  # never a test's own topic
    checked = metrics.registry.get_sample_value("coc_kafka_replication_checked_timestamp_seconds")
    assert checked is not None and checked >= began
