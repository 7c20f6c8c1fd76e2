"""Creating the pipeline's topics with the partitions, replication and compaction they need.

Topics are made before a service subscribes, not left to broker auto-creation:
the approvals topic must be compacted, and every topic needs enough partitions
for its stage to scale out (signing first).
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared import topics
from shared.settings import CocSettings


def wanted_topics(settings: CocSettings) -> list[NewTopic]:
    names = [*topics.ALL, *(topics.dlq(t) for t in topics.ALL if t != topics.STATUS)]
    configs = {"min.insync.replicas": str(settings.topic_min_insync)}
    return [
        NewTopic(
            name,
            num_partitions=1 if name == topics.APPROVALS else settings.topic_partitions,
            replication_factor=settings.topic_replication,
            topic_configs={**configs, "cleanup.policy": "compact"} if name in topics.COMPACTED else configs,
        )
        for name in names
    ]


async def ensure_topics(settings: CocSettings) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted_topics(settings) if t.name not in existing]
        if missing:
            # another process may make them between the listing and the creation
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()
