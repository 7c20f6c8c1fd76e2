"""``coc groups add|remove|list``: the plants and vehicle groups builds may name, as data on coc.masterdata.v1.

The compliance lead keeps them (the workspace's rollout page publishes the same
change with the signed-in person's name; here ``--by`` names the person).
Validation blocks a build naming an unknown plant or group (GROUP_UNKNOWN,
PLANT_UNKNOWN) and decides it again once the name is added, without a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.errors import EXIT_STATUS, BadInput, CommandError
from cli.policy import quiet_kafka_client

if TYPE_CHECKING:
    from shared.contracts.masterdata import MasterDataChange
    from shared.master_table import MasterTable
    from shared.settings import CocSettings


def register(coc: click.Group) -> None:
    coc.add_command(groups)


@click.group(help="Plants and vehicle groups builds may name (master data of the compliance lead).")
def groups() -> None:
    pass


PLANT = click.option("--plant", is_flag=True, help="a plant, not a vehicle group")
BY = click.option("--by", required=True, help="name of the person who sets it")
COMMENT = click.option("--comment", help="why")


@groups.command("add", epilog=EXIT_STATUS)
@click.argument("name")
@PLANT
@BY
@COMMENT
def add(name: str, plant: bool, by: str, comment: str | None) -> None:
    """Make a vehicle group (or, with --plant, a plant) known: builds naming it are no longer blocked."""
    print(set_known(name, plant=plant, known=True, by=by, comment=comment))


@groups.command("remove", epilog=EXIT_STATUS)
@click.argument("name")
@PLANT
@BY
@COMMENT
def remove(name: str, plant: bool, by: str, comment: str | None) -> None:
    """Withdraw a vehicle group (or plant): builds naming it, waiting ones too, are blocked again."""
    print(set_known(name, plant=plant, known=False, by=by, comment=comment))


def set_known(name: str, *, plant: bool, known: bool, by: str, comment: str | None) -> str:
    import asyncio

    from pydantic import ValidationError

    from shared.contracts.events import now
    from shared.contracts.masterdata import MasterDataChange, MasterKind
    from shared.kafka import describe
    from shared.settings import CocSettings

    kind = MasterKind.PLANT if plant else MasterKind.VEHICLE_GROUP
    try:
        change = MasterDataChange(kind=kind, name=name, known=known, set_by=by, set_at=now(), comment=comment)
    except ValidationError as exc:
        raise BadInput(describe(exc)) from None
    quiet_kafka_client()
    asyncio.run(publish(CocSettings(), change))
    what = "plant" if plant else "vehicle group"
    return f"{what} {change.name}: {'known' if known else 'withdrawn'} (set by {change.set_by})"


async def publish(settings: CocSettings, change: MasterDataChange) -> None:
    from aiokafka.errors import KafkaError

    from devkit.masterdata import publish_master_data

    try:
        await publish_master_data(settings, [change])
    except (KafkaError, OSError) as exc:
        raise CommandError(
            f"cannot publish to Kafka at {settings.kafka_bootstrap}: {exc or type(exc).__name__}"
        ) from None


@groups.command("list", epilog=EXIT_STATUS)
@click.option("--json", "as_json", is_flag=True, help="the newest change per name as JSON")
def list_names(as_json: bool) -> None:
    """The plants and vehicle groups on coc.masterdata.v1, the newest change of each."""
    import asyncio

    from cli.output import rows, show, show_json, table
    from shared.settings import CocSettings

    quiet_kafka_client()
    known = asyncio.run(read_table(CocSettings()))
    if as_json:
        show_json({key: change.model_dump(mode="json") for key, change in sorted(known.changes.items())})
        return
    if not known.changes:
        print("no plant or vehicle group on the topic: validation blocks every build until some are added")
        return
    cells = (
        (
            change.kind.value,
            change.name,
            "known" if change.known else "withdrawn",
            f"{change.set_by} at {change.set_at:%Y-%m-%d %H:%M:%S %Z}",
        )
        for _key, change in sorted(known.changes.items())
    )
    show(rows(table("kind", "name", "state", "set", show_header=False), cells))


async def read_table(settings: CocSettings) -> MasterTable:
    """The newest change per name, read from the topic as validation reads it."""
    from aiokafka.errors import KafkaError

    from services.validation.adapters.masterdata import read_all
    from shared.master_table import MasterTable

    try:
        return MasterTable(await read_all(settings))
    except (KafkaError, OSError) as exc:
        raise CommandError(
            f"cannot read Kafka at {settings.kafka_bootstrap}: {exc or type(exc).__name__}"
        ) from None
