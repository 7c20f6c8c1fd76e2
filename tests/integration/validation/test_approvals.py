"""Reading the compacted approvals topic on the real Kafka: everything up to its end, newest per key last.

The topic is the real ``coc.approvals.v1``, which other tests also write to, so
this test publishes approvals whose keys carry its own ``unique`` suffix and
looks only at those.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from devkit.samples import generate
from services.validation.adapters.approvals import read_all
from services.validation.rules import ApprovalTable
from shared import topics
from shared.contracts import Approval
from shared.ivi import IviSchema
from shared.kafka import ensure_topics
from shared.settings import CocSettings

pytestmark = pytest.mark.integration

SAMPLE = generate(vehicles=1, seed=9, defect_share=0.0).approvals[0]


def approval(unique: str, name: str, **changes: object) -> Approval:
    """The sample approval under a version of this test only (the version is part of the key)."""
    return SAMPLE.model_copy(update={"version": f"{name}-{unique}", **changes})


async def publish(settings: CocSettings, messages: list[tuple[str, bytes]]) -> list[tuple[int, int]]:
    """Send in order, each acknowledged before the next; the (partition, offset) of each."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        placed = []
        for key, value in messages:
            sent = await producer.send_and_wait(topics.APPROVALS, value=value, key=key.encode())
            placed.append((sent.partition, sent.offset))
        return placed
    finally:
        await producer.stop()


async def test_read_all_returns_every_usable_approval_newest_per_key_last_and_skips_broken_ones(
    settings: CocSettings, unique: str, xsd_path: Path
) -> None:
    first = approval(unique, "A", actual_mass_max_kg=1600)
    other = approval(unique, "B")
    newer = approval(unique, "A", actual_mass_max_kg=1700)  # the same key, corrected
    assert first.key == newer.key != other.key
    broken_key = f"broken|{unique}"
    broken = first.model_dump(mode="json") | {"number": "not a type-approval number"}
    await ensure_topics(settings)  # as a service would: compacted, one partition
    placed = await publish(
        settings,
        [
            (first.key, first.model_dump_json().encode()),
            (broken_key, json.dumps(broken).encode()),
            (other.key, other.model_dump_json().encode()),
            (newer.key, newer.model_dump_json().encode()),
        ],
    )

    approvals = await read_all(settings)

    mine = [a for a in approvals if unique in a.key]
    # One partition, so the topic's order; compaction may already have dropped the first.
    assert mine in ([first, other, newer], [other, newer])
    assert [a for a in mine if a.key == first.key][-1].actual_mass_max_kg == 1700
    # The broken approval lies between usable ones on the one partition: read past, not stopped at.
    assert len({partition for partition, _ in placed}) == 1
    assert placed[0][1] < placed[1][1] < placed[2][1]

    table = ApprovalTable.of(IviSchema.load(xsd_path), approvals)
    assert table.get(first.key) == newer
    assert table.get(other.key) == other
    assert table.get(broken_key) is None
    assert first.key in table.master_findings and other.key in table.master_findings
    assert first.number in table.numbers
