"""Plants and vehicle groups made known on a stack, as the compliance lead does: for the demo, the bench and tests.

Validation blocks a build naming a plant or group it does not know
(GROUP_UNKNOWN, PLANT_UNKNOWN). The demo and the tests publish the names their
builds carry first, on coc.masterdata.v1, and wait until validation reads them
(``GET /v1/masterdata``), so no build is blocked for the moment between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence

import httpx

from shared import topics
from shared.contracts import BuildRecord
from shared.contracts.events import now
from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.settings import CocSettings

SAMPLE_LEAD = "demo compliance lead"


def sample_names() -> dict[MasterKind, set[str]]:
    """Every plant and vehicle group of the sample catalogue (``devkit.approvals``, ``devkit.multistage``)."""
    from devkit.approvals import types
    from devkit.multistage import stages

    return {
        MasterKind.VEHICLE_GROUP: {spec.vehicle_group for spec in types()}
        | {s.vehicle_group for s in stages()},
        MasterKind.PLANT: {spec.manufacturer.plant for spec in types()} | {s.plant for s in stages()},
    }


def names_of(builds: Iterable[BuildRecord]) -> dict[MasterKind, set[str]]:
    found: dict[MasterKind, set[str]] = {MasterKind.VEHICLE_GROUP: set(), MasterKind.PLANT: set()}
    for build in builds:
        found[MasterKind.VEHICLE_GROUP].add(build.vehicle_group)
        found[MasterKind.PLANT].add(build.plant)
    return found


def changes_for(names: Mapping[MasterKind, Iterable[str]], by: str = SAMPLE_LEAD) -> list[MasterDataChange]:
    at = now()
    return [
        MasterDataChange(kind=kind, name=name, set_by=by, set_at=at, comment="sample master data")
        for kind, named in names.items()
        for name in sorted(named)
    ]


async def publish_master_data(settings: CocSettings, changes: Sequence[MasterDataChange]) -> None:
    """The changes on coc.masterdata.v1 (key = kind:name), each acknowledged by every in-sync replica."""
    from aiokafka import AIOKafkaProducer

    from shared.kafka import client_options, ensure_topics, envelope_headers, idempotent

    await ensure_topics(settings)  # compacted, one partition; never left to auto-creation
    producer = AIOKafkaProducer(
        **client_options(settings), acks="all", enable_idempotence=idempotent(settings)
    )
    await producer.start()
    try:
        for change in changes:
            headers = [(k, v.encode()) for k, v in envelope_headers(change, service="cli").items()]
            await producer.send_and_wait(
                topics.MASTERDATA, change.model_dump_json().encode(), key=change.key.encode(), headers=headers
            )
    finally:
        await producer.stop()


# How long validation may take to know a name. Just after a start it first reads the approvals and
# master data topics whole and decides again the records waiting on each row, one scan of its
# pending collection per row on FerretDB: measured 2026-12-07 on an end-to-end stack holding
# some thousands of records, 115 approvals took 32 s and the master data then 50 s more.
KNOWN_WITHIN_S = 180.0


async def wait_known(
    http: httpx.AsyncClient,
    validation_url: str,
    token: str,
    names: Mapping[MasterKind, Iterable[str]],
    timeout: float = KNOWN_WITHIN_S,
) -> None:
    """Until validation says it knows ``names``; TimeoutError naming the missing ones at the deadline."""
    fields = {MasterKind.VEHICLE_GROUP: "vehicle_groups", MasterKind.PLANT: "plants"}
    deadline = time.monotonic() + timeout
    missing: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        try:
            response = await http.get(
                f"{validation_url}/v1/masterdata", headers={"Authorization": f"Bearer {token}"}
            )
            known = response.json() if response.status_code == 200 else {}
        except httpx.HTTPError:
            known = {}
        missing = {
            fields[kind]: sorted(set(named) - set(known.get(fields[kind], ())))
            for kind, named in names.items()
        }
        if not any(missing.values()):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"validation at {validation_url} does not know {missing} after {timeout:.0f}s")


async def make_known(
    settings: CocSettings,
    validation_url: str,
    token: str,
    names: Mapping[MasterKind, Iterable[str]],
    timeout: float = KNOWN_WITHIN_S,
) -> None:
    """Publish ``names`` as known and wait until validation has read them."""
    await publish_master_data(settings, changes_for(names))
    async with httpx.AsyncClient(timeout=10) as http:
        await wait_known(http, validation_url, token, names, timeout)
