"""Two delivery instances working one ledger on FerretDB: each send claimed by exactly one of them."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.delivery.adapters.ledger import Ledger
from services.delivery.deliver import Delivery, Step
from shared.mongo import MongoDoc, make_client
from shared.settings import CocSettings

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def delivery(n: int) -> Delivery:
    vin = f"CLAIMTEST{n:08d}"
    return Delivery(
        id=f"{vin}:1:nap-lt",
        vin=vin,
        revision=1,
        record_id=f"{vin}:1",
        version_number=1,
        reference_id="ref",
        sha256="0" * 64,
        destination="nap-lt",
        step=Step.QUEUED,
    )


@pytest.fixture
async def two_ledgers(settings: CocSettings, unique: str) -> AsyncIterator[tuple[Ledger, Ledger]]:
    """One database, two clients: as two delivery instances see it."""
    clients = [make_client(settings) for _ in range(2)]
    name = f"test_claims_{unique}"
    try:
        dbs: list[AsyncDatabase[MongoDoc]] = [client[name] for client in clients]
        yield Ledger(dbs[0]), Ledger(dbs[1])
    finally:
        await clients[0].drop_database(name)
        for client in clients:
            await client.close()


async def test_two_senders_claiming_the_same_deliveries_at_once_each_get_a_delivery_once(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    first, second = two_ledgers
    entries = [await first.record(delivery(n)) for n in range(60)]
    read = [(await first.get(d.id), await second.get(d.id)) for d in entries]
    won = await asyncio.gather(
        *(
            ledger.claim(d, NOW, 20)
            for pair in read
            for ledger, d in zip((first, second), pair, strict=True)
            if d
        )
    )
    winners = [claimed.id for claimed in won if claimed is not None]
    assert sorted(winners) == sorted(d.id for d in entries)  # each exactly once
    stored = [await first.get(d.id) for d in entries]
    assert all(s is not None and s.claims == 1 and s.step is Step.SENDING and s.attempts == 1 for s in stored)


async def test_a_sender_that_read_the_entry_before_anothers_whole_send_cannot_send_it_again(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    first, second = two_ledgers
    entry = await first.record(delivery(100))
    stale = await second.get(entry.id)  # read before the first sender's claim
    claimed = await first.claim(entry, NOW, 20)
    assert claimed is not None
    assert await first.save(
        replace(claimed, step=Step.DELIVERED, claim=None)
    )  # sent, answered, no claim left
    assert stale is not None and await second.claim(stale, NOW, 20) is None
    found = await first.get(entry.id)
    assert found is not None and (found.step, found.attempts) == (Step.DELIVERED, 1)


async def test_a_sender_past_its_lease_leaves_the_delivery_to_the_one_that_took_it_over(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    first, second = two_ledgers
    entry = await first.record(delivery(200))
    slow = await first.claim(entry, NOW, 20)
    assert slow is not None
    taken_over = await second.claim(slow, NOW + dt.timedelta(seconds=30), 20)  # the lease ran out
    assert taken_over is not None and taken_over.claims == 2
    assert await second.save(replace(taken_over, step=Step.DELIVERED, claim=None))
    assert not await first.save(replace(slow, step=Step.RETRYING, claim=None))  # its older answer is dropped
    found = await first.get(entry.id)
    assert found is not None and (found.step, found.claims) == (Step.DELIVERED, 2)
    again = await first.get(entry.id)
    assert again is not None and await second.claim(again, NOW, 20) is not None  # not stuck: claim 3 is free


async def test_a_sender_that_reads_the_entry_while_another_holds_it_leaves_it_alone(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    first, second = two_ledgers
    entry = await first.record(delivery(300))
    assert await first.claim(entry, NOW, 20) is not None  # sending now
    while_held = await second.get(entry.id)  # due before the lease was written, read after the claim
    assert while_held is not None and while_held.claims == 1
    assert await second.claim(while_held, NOW + dt.timedelta(seconds=5), 20) is None


async def test_a_claim_whose_sender_died_before_writing_the_ledger_is_taken_once_its_lease_ran_out(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    first, second = two_ledgers
    entry = await first.record(delivery(400))
    until = NOW + dt.timedelta(seconds=20)
    await first.claims.insert_one({"_id": f"{entry.id}#1", "until": until, "token": "died"})  # then killed
    assert await second.claim(entry, NOW + dt.timedelta(seconds=5), 20) is None  # its lease still runs
    taken = await second.claim(entry, NOW + dt.timedelta(seconds=30), 20)
    assert taken is not None and taken.claims == 2
