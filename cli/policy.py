"""``coc policy set|list``: the release policy of a vehicle group, as data on coc.policies.v1.

The workspace's rollout page publishes the same change with the signed-in
person's name; this command is for the command line and the tests, and names
the person with ``--by``. Validation reads the topic at run time: a change takes
effect without a restart, and a released group's held records move on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.errors import EXIT_STATUS, BadInput, CommandError

if TYPE_CHECKING:
    from shared.contracts.policies import PolicyChange
    from shared.settings import CocSettings

SEND_TIMEOUT_MS = 15_000
POLICIES = (
    "auto",
    "review",
    "hold",
)  # shared.contracts.policies.ReleasePolicy (a unit test holds them equal)


def quiet_kafka_client() -> None:
    """The Kafka client logs each failed connection; the command says it once, as its error."""
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def register(coc: click.Group) -> None:
    coc.add_command(policy)


@click.group(help="Release policy per vehicle group: auto, review or hold.")
def policy() -> None:
    pass


@policy.command("set", epilog=EXIT_STATUS)
@click.argument("group")
@click.argument("policy", type=click.Choice(POLICIES))
@click.option("--by", required=True, help="name of the person who sets it")
@click.option("--comment", help="why")
def set_policy(group: str, policy: str, by: str, comment: str | None) -> None:
    """Set a vehicle group's release policy, on coc.policies.v1.

    auto: clean records go straight on; review: every record waits for a reviewer;
    hold: the group is not yet released. Validation reads the topic at run time:
    the change takes effect without a restart, and a released group's held
    records move on.
    """
    import asyncio

    from pydantic import ValidationError

    from shared.contracts.events import now
    from shared.contracts.policies import PolicyChange, ReleasePolicy
    from shared.kafka import describe
    from shared.settings import CocSettings

    try:
        change = PolicyChange(
            vehicle_group=group, policy=ReleasePolicy(policy), set_by=by, set_at=now(), comment=comment
        )
    except ValidationError as exc:
        raise BadInput(describe(exc)) from None
    quiet_kafka_client()
    settings = CocSettings()
    asyncio.run(refuse_unknown(settings, change.vehicle_group))
    asyncio.run(publish(settings, change))
    print(
        f"{change.vehicle_group}: {change.policy.value} (set by {change.set_by} at {change.set_at:%Y-%m-%d %H:%M:%S %Z})"
    )


async def refuse_unknown(settings: CocSettings, group: str) -> None:
    """Only a known vehicle group gets a policy: a typo would otherwise become a policy nobody uses."""
    from cli.groups import read_table
    from shared.contracts.masterdata import MasterKind

    if not (await read_table(settings)).is_known(MasterKind.VEHICLE_GROUP, group):
        raise BadInput(
            f"vehicle group {group!r} is not in the master data: add it first (`coc groups add` or the "
            "workspace's rollout page)"
        )


async def publish(settings: CocSettings, change: PolicyChange) -> None:
    """One message on coc.policies.v1, key = vehicle group, acknowledged by every in-sync replica."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from shared import topics
    from shared.kafka import client_options, ensure_topics, envelope_headers, idempotent

    producer = AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=idempotent(settings),
        request_timeout_ms=SEND_TIMEOUT_MS,
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


@policy.command("list", epilog=EXIT_STATUS)
@click.option("--json", "as_json", is_flag=True, help="the newest change per group as JSON")
def list_policies(as_json: bool) -> None:
    """The policies set on coc.policies.v1, the newest per group."""
    import asyncio

    from cli.output import rows, show, show_json, table
    from shared.settings import CocSettings

    quiet_kafka_client()
    changes = asyncio.run(read_table(CocSettings()))
    if as_json:
        show_json({group: change.model_dump(mode="json") for group, change in sorted(changes.items())})
        return
    if not changes:
        print("no release policy set on the topic: every group follows validation's settings")
        return
    cells = (
        (
            group,
            change.policy.value,
            f"{change.set_by} at {change.set_at:%Y-%m-%d %H:%M:%S %Z}",
            f"({change.comment})" if change.comment else "",
        )
        for group, change in sorted(changes.items())
    )
    show(rows(table("group", "policy", "set", "comment", show_header=False), cells))


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
