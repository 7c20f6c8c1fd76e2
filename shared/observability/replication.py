"""Under-replicated partitions, as one service sees the cluster: read every ``interval_s`` with the admin client.

A partition is under-replicated while its in-sync replicas are fewer than its
replicas (a broker down or behind). The status service runs this (one reader is
enough; with two instances both report, and a rule takes the larger). With ACLs a
principal sees only the topics it may describe: the count covers those. A read
that fails leaves the last counts and the time of the last good read, so a rule
can tell a stale reading from a good one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from shared import topics
from shared.kafka import client_options
from shared.observability.metrics import StageMetrics
from shared.settings import CocSettings

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 10.0
OTHER = "other"  # every topic that is not the pipeline's own (a test's, a tool's): one series for them all


def under_replicated(described: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Per pipeline topic (the rest as ``other``), its partitions with fewer in-sync replicas than replicas."""
    ours = {*topics.ALL, *(topics.dlq(name) for name in topics.ALL)}
    counts: dict[str, int] = dict.fromkeys(sorted(ours & {str(t.get("topic")) for t in described}), 0)
    for topic in described:
        if topic.get("error_code", 0) or topic.get("is_internal"):
            continue  # not ours to describe (an ACL), or Kafka's own
        name = str(topic["topic"]) if topic["topic"] in ours else OTHER
        lagging = sum(1 for p in topic.get("partitions", ()) if len(p["isr"]) < len(p["replicas"]))
        counts[name] = counts.get(name, 0) + lagging
    return counts


class ReplicationWatch:
    """Reads the topics' replication every ``interval_s`` into ``metrics`` until stopped."""

    def __init__(self, settings: CocSettings, metrics: StageMetrics, interval_s: float) -> None:
        self.settings, self.metrics, self.interval_s = settings, metrics, interval_s
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="replication watch")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.read_once(), READ_TIMEOUT_S)
            except Exception as exc:  # the cluster away: the last counts stay, their time says how old
                log.warning("replication not read (%s); tried again in %.0f s", exc, self.interval_s)
            await asyncio.sleep(self.interval_s)

    async def read_once(self) -> None:
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        await admin.start()
        try:
            described = await admin.describe_topics()
        finally:
            await admin.close()
        for topic, count in under_replicated(described).items():
            self.metrics.under_replicated.labels(topic).set(count)
        self.metrics.replication_checked.set(time.time())
