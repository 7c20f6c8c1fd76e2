"""The audit of people's actions on the real FerretDB: per target, newest first, nothing lost, one chain."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.workspace.adapters.audit import CHAIN, COLLECTION, AuditLog
from services.workspace.identity import Person, PersonRole
from shared.mongo import MongoDoc, make_client
from shared.settings import CocSettings

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
LEAD = Person("Carla Lead", frozenset({PersonRole.COMPLIANCE_LEAD}))


@pytest.fixture
def log(test_db: AsyncDatabase[MongoDoc]) -> AuditLog:
    return AuditLog(test_db[COLLECTION])


async def test_actions_on_a_target_read_back_newest_first_with_who_when_and_what(log: AuditLog) -> None:
    await log.record(LEAD, "policy set", "group:KUDU", {"policy": {"from": "hold", "to": "review"}}, T0)
    await log.record("Rita", "review accepted", "record:WVWZZZ1JZ3W386752", {"comment": "ok"}, T0)
    await log.record(
        LEAD, "policy set", "group:KUDU", {"policy": {"from": "review", "to": "auto"}}, T0 + dt.timedelta(1)
    )

    entries = await log.for_target("group:KUDU")

    assert [entry.change["policy"]["to"] for entry in entries] == ["auto", "review"]
    assert {entry.person for entry in entries} == {"Carla Lead"}
    assert entries[0].at == T0 + dt.timedelta(1)
    assert entries[0].action == "policy set" and entries[0].target == "group:KUDU"
    assert [entry.person for entry in await log.for_target("record:WVWZZZ1JZ3W386752")] == ["Rita"]
    assert await log.for_target("group:NONE") == []


async def test_changes_keep_keys_that_mongodb_field_names_cannot_hold(log: AuditLog) -> None:
    change = {"data.MassGroup.$max": {"from": 1600, "to": 1650}, "at": T0}

    await log.record(LEAD, "approval changed", "approval:e1*1", change, T0)

    (entry,) = await log.for_target("approval:e1*1")
    assert entry.change == {"data.MassGroup.$max": {"from": 1600, "to": 1650}, "at": str(T0)}


async def test_a_page_shows_the_last_entries_and_the_history_keeps_them_all(log: AuditLog) -> None:
    for n in range(8):
        await log.record(LEAD, "policy set", "group:RHINO", {"n": n}, T0 + dt.timedelta(minutes=n))

    assert [entry.change["n"] for entry in await log.for_target("group:RHINO", limit=5)] == [7, 6, 5, 4, 3]
    assert [entry.change["n"] for entry in await log.for_target("group:RHINO", limit=2)] == [7, 6]
    assert [entry.change["n"] for entry in await log.history("group:RHINO")] == list(range(7, -1, -1))


async def test_a_head_left_behind_costs_no_entry(log: AuditLog, test_db: AsyncDatabase[MongoDoc]) -> None:
    for n in range(3):
        await log.record(LEAD, "policy set", "group:GNU", {"n": n}, T0 + dt.timedelta(minutes=n))
    await test_db[f"{COLLECTION}_heads"].replace_one({"_id": "group:GNU"}, {"n": 1})  # as after a lost race

    assert [entry.change["n"] for entry in await log.for_target("group:GNU")] == [2, 1, 0]
    await log.record(LEAD, "policy set", "group:GNU", {"n": 3}, T0 + dt.timedelta(minutes=3))
    assert [entry.change["n"] for entry in await log.history("group:GNU")] == [3, 2, 1, 0]
    assert await test_db[COLLECTION].count_documents({"target": "group:GNU"}) == 4


async def test_concurrent_actions_on_one_target_are_all_kept(log: AuditLog) -> None:
    await asyncio.gather(
        *(
            log.record(
                f"person {n}", "review accepted", "record:VIN1", {"n": n}, T0 + dt.timedelta(seconds=n)
            )
            for n in range(20)
        )
    )

    entries = await log.for_target("record:VIN1", limit=50)

    assert [entry.change["n"] for entry in entries] == list(range(19, -1, -1))


async def test_concurrent_writers_on_two_clients_extend_one_chain_without_a_fork(
    settings: CocSettings, test_db: AsyncDatabase[MongoDoc]
) -> None:
    clients = [make_client(settings) for _ in range(2)]  # as two workspace instances would
    try:
        logs = [AuditLog(client[test_db.name][COLLECTION]) for client in clients]
        await asyncio.gather(
            *(logs[n % 2].record(f"person {n}", "policy", f"group:G{n % 3}", {"n": n}, T0) for n in range(30))
        )
    finally:
        for client in clients:
            await client.close()

    entries, verdict = await AuditLog(test_db[COLLECTION]).verification()

    assert verdict.ok, verdict.summary()
    assert [entry.seq for entry in entries] == list(range(1, 31))
    assert sorted(json.loads(entry.details)["n"] for entry in entries) == list(range(30))
    assert len({entry.previous for entry in entries}) == 30  # no two entries link to the same one
    assert (verdict.head_seq, verdict.head_sha256) == (30, entries[-1].sha256)


async def test_the_chain_names_an_entry_altered_or_deleted_in_the_database(
    log: AuditLog, test_db: AsyncDatabase[MongoDoc]
) -> None:
    for n in range(5):
        await log.record(LEAD, "policy", "group:KUDU", {"n": n}, T0 + dt.timedelta(minutes=n))
    entries, verdict = await log.verification()
    assert verdict.ok and entries[0].role == "compliance-lead"

    await test_db[CHAIN].update_one({"_id": 2}, {"$set": {"change": '{"n": 99}'}})
    await test_db[CHAIN].delete_one({"_id": 4})
    _, verdict = await log.verification()

    assert [(b.seq, b.kind.value) for b in verdict.breaks] == [(2, "altered"), (4, "missing")]
    assert verdict.summary().startswith("BROKEN at entry 2: entry 2 was altered")


async def test_a_writer_after_a_deleted_head_entry_does_not_hide_the_deletion(
    log: AuditLog, test_db: AsyncDatabase[MongoDoc]
) -> None:
    for n in range(3):
        await log.record(LEAD, "policy", "group:GNU", {"n": n}, T0)
    await test_db[CHAIN].delete_one({"_id": 3})

    await log.record(LEAD, "policy", "group:GNU", {"n": 3}, T0)
    _, verdict = await log.verification()

    assert [(b.seq, b.kind.value) for b in verdict.breaks] == [(3, "missing")]
    assert [entry.seq for entry in await log.entries()] == [1, 2, 4]


async def test_entries_from_before_the_chain_stay_on_pages_and_the_chain_starts_after_them(
    log: AuditLog, test_db: AsyncDatabase[MongoDoc]
) -> None:
    older = {
        "person": "Old Lead",
        "action": "policy",
        "target": "group:OKAPI",
        "change": '{"n": 0}',
        "at": T0,
    }
    await test_db[COLLECTION].insert_one({"_id": "group:OKAPI#1", "k": 1, **older})
    await test_db[f"{COLLECTION}_heads"].insert_one({"_id": "group:OKAPI", "n": 1})

    await log.record(LEAD, "policy", "group:OKAPI", {"n": 1}, T0 + dt.timedelta(minutes=1))

    assert [entry.change["n"] for entry in await log.history("group:OKAPI")] == [1, 0]
    entries, verdict = await log.verification()
    assert [entry.seq for entry in entries] == [1] and verdict.ok and verdict.before_chain == 1
    assert "starts after 1 older entries" in verdict.summary()


async def test_a_document_slipped_into_the_chain_without_a_number_is_named_not_a_crash(
    log: AuditLog, test_db: AsyncDatabase[MongoDoc]
) -> None:
    await log.record(LEAD, "policy", "group:KUDU", {"n": 0}, T0)
    await test_db[CHAIN].insert_one({"_id": "forged", "person": "Mallory"})

    entries, verdict = await log.verification()

    assert [entry.seq for entry in entries] == [1]
    assert [(b.seq, b.kind.value) for b in verdict.breaks] == [(0, "foreign")]
    assert verdict.summary() == "BROKEN: a document that is no entry is in the log: 'forged'"
