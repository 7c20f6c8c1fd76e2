"""The policies topic on the real Kafka: a change published as ``coc policy set`` does, read back whole.

The topic is the real ``coc.policies.v1``, which other tests and the workspace
also write to, so this test uses vehicle groups carrying its own ``unique``
suffix and looks only at those.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from aiokafka import AIOKafkaProducer

from cli.policy import publish, read_table
from services.validation.adapters.policies import read_all
from services.validation.policy import PolicyInForce, ReleasePolicy, RulePolicy
from shared import topics
from shared.contracts.events import now
from shared.contracts.policies import PolicyChange
from shared.kafka import partitions_of, read_to_end
from shared.settings import CocSettings

pytestmark = pytest.mark.integration


def change(group: str, policy: ReleasePolicy, seconds: int, comment: str | None = None) -> PolicyChange:
    return PolicyChange(
        vehicle_group=group,
        policy=policy,
        set_by="C. Lead",
        set_at=now() + dt.timedelta(seconds=seconds),
        comment=comment,
    )


async def test_changes_published_to_the_topic_are_read_back_whole_in_order_and_the_newest_wins(
    settings: CocSettings, unique: str
) -> None:
    held, reviewed = f"HOLD-{unique}", f"REVIEW-{unique}"
    first = change(held, ReleasePolicy.HOLD, 0)
    other = change(reviewed, ReleasePolicy.REVIEW, 1)
    newest = change(held, ReleasePolicy.AUTO, 2, comment="released after the audit")
    for made in (first, other, newest):
        await publish(settings, made)  # as `coc policy set` does; it also makes the topic
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:  # a broken change between usable ones: skipped, not stopped at
        broken = first.model_dump(mode="json") | {"vehicle_group": f"BROKEN-{unique}", "policy": "maybe"}
        await producer.send_and_wait(
            topics.POLICIES, json.dumps(broken).encode(), key=broken["vehicle_group"].encode()
        )
    finally:
        await producer.stop()

    assert await partitions_of(settings, topics.POLICIES) == [0]
    keys = [(r.key or b"").decode() for r in await read_to_end(settings, topics.POLICIES)]
    mine = [key for key in keys if unique in key]
    # One partition, so the topic's order; compaction may already have dropped the first.
    assert mine in ([held, reviewed, held, f"BROKEN-{unique}"], [reviewed, held, f"BROKEN-{unique}"])
    changes = [c for c in await read_all(settings) if unique in c.vehicle_group]
    assert changes in ([first, other, newest], [other, newest])

    in_force = PolicyInForce(RulePolicy(release_policy={held: ReleasePolicy.HOLD}))
    in_force.load(changes)
    assert in_force.policy_for(held) is ReleasePolicy.AUTO
    assert in_force.policy_for(reviewed) is ReleasePolicy.REVIEW
    found = in_force.table.get(held)
    assert found is not None and found.comment == "released after the audit"

    listed = await read_table(settings)  # what `coc policy list` prints
    assert listed[held] == newest and listed[reviewed] == other
