"""``coc policy set|list``: the release policy of a vehicle group, as data on coc.policies.v1.

The workspace's rollout page publishes the same change with the signed-in
person's name; this command is for the command line and the tests, and names
the person with ``--by``. Validation reads the topic at run time: a change takes
effect without a restart, and a released group's held records move on.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from cli.main import CommandError
from shared.contracts.policies import PolicyChange, ReleasePolicy
from shared.settings import CocSettings

SEND_TIMEOUT_MS = 15_000


def quiet_kafka_client() -> None:
    """The Kafka client logs each failed connection; the command says it once, as its error."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def register(subparsers: Any) -> None:
    policy = subparsers.add_parser("policy", help="release policy per vehicle group (auto, review, hold)")
    actions = policy.add_subparsers(dest="action", required=True)

    change = actions.add_parser("set", help="set a vehicle group's release policy")
    change.add_argument("group", help="vehicle group, e.g. CHR")
    change.add_argument("policy", choices=[p.value for p in ReleasePolicy])
    change.add_argument("--by", required=True, help="name of the person who sets it")
    change.add_argument("--comment", help="why")
    change.set_defaults(func=run_set)

    listing = actions.add_parser("list", help="the policies set on coc.policies.v1, newest per group")
    listing.set_defaults(func=run_list)


def run_set(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from shared.contracts.events import now
    from shared.kafka import describe

    try:
        change = PolicyChange(
            vehicle_group=args.group,
            policy=ReleasePolicy(args.policy),
            set_by=args.by,
            set_at=now(),
            comment=args.comment,
        )
    except ValidationError as exc:
        raise CommandError(describe(exc)) from None
    quiet_kafka_client()
    asyncio.run(publish(CocSettings(), change))
    print(
        f"{change.vehicle_group}: {change.policy.value} (set by {change.set_by} at {change.set_at:%Y-%m-%d %H:%M:%S %Z})"
    )
    return 0


async def publish(settings: CocSettings, change: PolicyChange) -> None:
    """One message on coc.policies.v1, key = vehicle group, acknowledged by every in-sync replica."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from shared import topics
    from shared.kafka import ensure_topics, envelope_headers

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", request_timeout_ms=SEND_TIMEOUT_MS
    )
    try:
        await ensure_topics(settings)  # compacted, one partition; never left to auto-creation
        await producer.start()
        headers = [(k, v.encode()) for k, v in envelope_headers(change, service="cli").items()]
        await producer.send_and_wait(
            topics.POLICIES,
            value=change.model_dump_json().encode(),
            key=change.vehicle_group.encode(),
            headers=headers,
        )
    except (KafkaError, OSError) as exc:
        raise CommandError(
            f"cannot publish to Kafka at {settings.kafka_bootstrap}: {exc or type(exc).__name__}"
        ) from None
    finally:
        await producer.stop()


def run_list(_args: argparse.Namespace) -> int:
    quiet_kafka_client()
    changes = asyncio.run(read_table(CocSettings()))
    if not changes:
        print("no release policy set on the topic: every group follows validation's settings")
        return 0
    width = max(len(group) for group in changes) + 2
    for group, change in sorted(changes.items()):
        line = (
            f"{group:{width}}{change.policy.value:8}{change.set_by} at {change.set_at:%Y-%m-%d %H:%M:%S %Z}"
        )
        print(f"{line}  ({change.comment})" if change.comment else line)
    return 0


async def read_table(settings: CocSettings) -> dict[str, PolicyChange]:
    """The newest change per group, read from the topic as validation reads it."""
    from aiokafka.errors import KafkaError

    from services.validation.adapters.policies import read_all
    from shared.policy_table import PolicyTable

    try:
        table = PolicyTable(await read_all(settings))
    except (KafkaError, OSError) as exc:
        raise CommandError(
            f"cannot read Kafka at {settings.kafka_bootstrap}: {exc or type(exc).__name__}"
        ) from None
    return dict(table.changes)
