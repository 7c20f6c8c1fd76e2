"""``coc seals add|list``: each approval holder's seal, as data on coc.seals.v1 (integration's master data).

A registration names the holder as its approvals do (ManufacturerName), the
seal certificate, and where the key is: a PKCS#8 PEM file on the signing
service's host (``--key-file``) or a key label on the PKCS#11 token signing is
configured for (``--token-key``). The key itself never leaves its place.
Registering a new seal for a holder replaces the old one while the pipeline
runs (a rotation); records waiting for a holder's seal (SEAL_MISSING) are
sealed once it is registered.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.errors import EXIT_STATUS, BadInput, CommandError
from cli.policy import quiet_kafka_client

if TYPE_CHECKING:
    from shared.contracts.seals import SealRegistration
    from shared.seal_table import SealTable
    from shared.settings import CocSettings


def register(coc: click.Group) -> None:
    coc.add_command(seals)


@click.group(help="The seal of each approval holder (master data of integration).")
def seals() -> None:
    pass


@seals.command("add", epilog=EXIT_STATUS)
@click.argument("holder")
@click.option(
    "--cert", type=click.Path(path_type=Path, dir_okay=False), required=True, help="the seal certificate, PEM"
)
@click.option("--key-file", help="absolute path of the seal's PEM key on the signing service's host")
@click.option("--token-key", help="label of the seal's key on the PKCS#11 token signing uses")
@click.option("--by", required=True, help="name of the person who registers it")
@click.option("--comment", help="why")
def add(
    holder: str, cert: Path, key_file: str | None, token_key: str | None, by: str, comment: str | None
) -> None:
    """Register HOLDER's seal (or a new one that replaces it): signing seals HOLDER's records with it."""
    if not cert.is_file():
        raise BadInput(f"--cert: no file {cert}")
    if cert.stat().st_size > 16_000:
        raise BadInput(f"--cert: {cert} is larger than a seal certificate")
    registration = made(
        holder=holder,
        certificate_pem=cert.read_text(encoding="utf-8", errors="replace"),
        key_file=key_file,
        pkcs11_key=token_key,
        set_by=by,
        comment=comment,
    )
    publish_registration(registration)
    print(
        f"seal of {registration.holder} registered: {registration.certificate.subject.rfc4514_string()}, "
        f"sha256 {registration.fingerprint}, expires {registration.certificate.not_valid_after_utc:%Y-%m-%d}"
    )


@seals.command("withdraw", epilog=EXIT_STATUS)
@click.argument("holder")
@click.option("--by", required=True, help="name of the person who withdraws it")
@click.option("--comment", help="why")
def withdraw(holder: str, by: str, comment: str | None) -> None:
    """Withdraw HOLDER's seal: its records wait (SEAL_MISSING) until a new one is registered."""
    known = read_seals(settings_now()).get(holder)
    if known is None:
        raise BadInput(f"holder: no seal is registered for {holder!r}")
    registration = made(
        holder=holder, certificate_pem=known.certificate_pem, active=False, set_by=by, comment=comment
    )
    publish_registration(registration)
    print(f"seal of {registration.holder} withdrawn")


def made(**fields: object) -> SealRegistration:
    from pydantic import ValidationError

    from shared.contracts.events import now
    from shared.contracts.seals import SealRegistration
    from shared.kafka import describe

    try:
        return SealRegistration.model_validate({**fields, "set_at": now()})
    except ValidationError as exc:
        raise BadInput(describe(exc)) from None


def settings_now() -> CocSettings:
    from shared.settings import CocSettings

    return CocSettings()


def publish_registration(registration: SealRegistration) -> None:
    import asyncio

    from aiokafka.errors import KafkaError

    settings = settings_now()
    quiet_kafka_client()
    try:
        asyncio.run(send(settings, registration))
    except (KafkaError, OSError) as exc:
        raise CommandError(
            f"cannot publish to Kafka at {settings.kafka_bootstrap}: {exc or type(exc).__name__}"
        ) from None


async def send(settings: CocSettings, registration: SealRegistration) -> None:
    """The registration on coc.seals.v1 (key = holder), acknowledged by every in-sync replica."""
    from aiokafka import AIOKafkaProducer

    from shared import topics
    from shared.kafka import client_options, ensure_topics, envelope_headers, idempotent

    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **client_options(settings), acks="all", enable_idempotence=idempotent(settings)
    )
    await producer.start()
    try:
        headers = [(k, v.encode()) for k, v in envelope_headers(registration, service="cli").items()]
        await producer.send_and_wait(
            topics.SEALS,
            registration.model_dump_json().encode(),
            key=registration.key.encode(),
            headers=headers,
        )
    finally:
        await producer.stop()


@seals.command("list", epilog=EXIT_STATUS)
@click.option("--json", "as_json", is_flag=True, help="every holder's seal as JSON")
def list_seals(as_json: bool) -> None:
    """Every approval holder's seal on coc.seals.v1, soonest expiry first, with its days to expiry."""
    import datetime as dt

    from cli.output import rows, show, show_json, table
    from shared.seal_table import EXPIRY_WARNING_DAYS

    quiet_kafka_client()
    found = read_seals(settings_now()).rows(dt.datetime.now(dt.UTC))
    if as_json:
        show_json([{**row.__dict__, "warning": row.warning} for row in found])
        return
    if not found:
        print("no seal registered: signing seals every record with the seal of its settings")
        return
    cells = (
        (
            row.holder,
            "withdrawn" if not row.active else f"{row.days_left}{' RENEW' if row.warning else ''}",
            f"{row.not_after:%Y-%m-%d}",
            row.subject,
            row.serial,
            row.fingerprint[:16],
            row.key,
        )
        for row in found
    )
    show(
        rows(table("holder", "days", "expires", "subject", "serial", "sha256", "key", right=("days",)), cells)
    )
    if any(row.warning for row in found):
        print(f"RENEW: a seal expires within {EXPIRY_WARNING_DAYS} days (or has expired)")


def read_seals(settings: CocSettings) -> SealTable:
    """The newest registration per holder, read from the topic as signing reads it."""
    import asyncio

    from aiokafka.errors import KafkaError

    from shared import topics
    from shared.contracts.seals import SealRegistration
    from shared.kafka import read_contracts
    from shared.seal_table import SealTable

    async def read() -> SealTable:
        return SealTable(
            found for found, _record in await read_contracts(settings, topics.SEALS, SealRegistration)
        )

    try:
        return asyncio.run(read())
    except (KafkaError, OSError) as exc:
        raise CommandError(
            f"cannot read Kafka at {settings.kafka_bootstrap}: {exc or type(exc).__name__}"
        ) from None
