"""The audit log's hash chain and its verifier: every entry linked to the one before, every break named."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

import pytest

from services.workspace.audit_chain import GENESIS, ChainEntry, Kind, canonical, link, verify

pytestmark = pytest.mark.unit
T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def chain(n: int) -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    previous = GENESIS
    for seq in range(1, n + 1):
        entry = link(
            seq,
            previous,
            person=f"person {seq}",
            role="reviewer",
            action="review:accept",
            target=f"record:VIN{seq:014d}",
            details=json.dumps({"comment": f"checked {seq}"}),
            at=T0 + dt.timedelta(minutes=seq),
        )
        entries.append(entry)
        previous = entry.sha256
    return entries


def test_an_untouched_chain_is_intact_and_names_its_head() -> None:
    entries = chain(5)

    verdict = verify(entries, head_hint=5)

    assert verdict.ok and verdict.entries == 5
    assert (verdict.head_seq, verdict.head_sha256) == (5, entries[-1].sha256)
    assert verdict.summary() == f"intact: 5 entries, head 5 sha256 {entries[-1].sha256}"


def test_the_first_entry_links_to_the_genesis_value_and_each_next_to_the_hash_of_the_one_before() -> None:
    entries = chain(3)

    assert entries[0].previous == GENESIS == "0" * 64
    assert [e.previous for e in entries[1:]] == [e.sha256 for e in entries[:-1]]


def test_the_hash_covers_who_role_action_target_details_time_number_and_link() -> None:
    entry = chain(1)[0]
    expected = {
        "action": "review:accept",
        "details": '{"comment": "checked 1"}',
        "previous": GENESIS,
        "role": "reviewer",
        "seq": 1,
        "target": "record:VIN00000000000001",
        "time": "2026-12-07T09:01:00.000+00:00",
        "who": "person 1",
    }

    assert json.loads(canonical(1, *_content(entry), GENESIS)) == expected
    assert entry.sha256 == hashlib.sha256(canonical(1, *_content(entry), GENESIS)).hexdigest()
    changes: list[tuple[str, Any]] = [
        ("person", "someone else"),
        ("role", "compliance-lead"),
        ("action", "review:reject"),
        ("target", "record:OTHER"),
        ("details", "{}"),
        ("at", T0),
    ]
    for name, value in changes:
        assert dataclasses.replace(entry, **{name: value}).computed() != entry.sha256, name


def test_an_altered_entry_is_named_as_the_first_break() -> None:
    entries = chain(6)
    entries[3] = dataclasses.replace(entries[3], details=json.dumps({"comment": "rejected, in fact"}))

    verdict = verify(entries, head_hint=6)

    assert not verdict.ok and verdict.first is not None
    assert (verdict.first.seq, verdict.first.kind) == (4, Kind.ALTERED)
    assert verdict.summary().startswith(
        "BROKEN at entry 4: entry 4 was altered: 2026-12-07T09:04:00.000+00:00"
    )
    assert verdict.checks() == {4: verdict.first.what}


def test_an_entry_altered_together_with_its_stored_hash_is_named_by_the_next_entrys_link() -> None:
    entries = chain(5)
    forged = dataclasses.replace(entries[1], person="someone else")
    entries[1] = dataclasses.replace(forged, sha256=forged.computed())

    verdict = verify(entries, head_hint=5)

    assert verdict.first is not None and (verdict.first.seq, verdict.first.kind) == (2, Kind.ALTERED)
    assert "hash rewritten" in verdict.first.what and "someone else" in verdict.first.what


def test_a_deleted_entry_is_named_as_missing() -> None:
    entries = chain(6)
    del entries[2]

    verdict = verify(entries, head_hint=6)

    assert [(b.seq, b.kind) for b in verdict.breaks] == [(3, Kind.MISSING)]
    assert verdict.summary() == "BROKEN at entry 3: entry 3 is missing (entry 4 follows entry 2)"


def test_deleted_first_entries_are_named_from_the_genesis() -> None:
    verdict = verify(chain(4)[2:], head_hint=4)

    assert [(b.seq, b.kind) for b in verdict.breaks] == [(1, Kind.MISSING)]
    assert verdict.breaks[0].what == "entries 1 to 2 are missing (entry 3 is the first)"


def test_deleted_last_entries_show_against_the_heads_hint() -> None:
    verdict = verify(chain(5)[:3], head_hint=5)

    assert [(b.seq, b.kind) for b in verdict.breaks] == [(4, Kind.MISSING)]
    assert (
        verdict.breaks[0].what == "entries 4 to 5 are missing (the log's head is at 5, its last entry is 3)"
    )


def test_the_walk_follows_sequence_numbers_whatever_order_the_entries_come_in() -> None:
    entries = chain(5)

    assert verify([entries[3], entries[0], entries[4], entries[2], entries[1]], head_hint=5).ok


def test_two_entries_that_swapped_places_are_named() -> None:
    entries = chain(5)
    second, third = entries[1], entries[2]
    entries[1] = dataclasses.replace(third, seq=2)
    entries[2] = dataclasses.replace(second, seq=3)

    verdict = verify(entries, head_hint=5)

    assert [(b.seq, b.kind) for b in verdict.breaks] == [(2, Kind.ALTERED), (3, Kind.ALTERED)]


def test_a_first_entry_not_linked_to_the_genesis_value_is_named() -> None:
    first = link(
        1, "f" * 64, person="p", role="", action="a", target="t", details="{}", at=T0
    )  # a chain grafted on

    verdict = verify([first], head_hint=1)

    assert [(b.seq, b.kind) for b in verdict.breaks] == [(1, Kind.ALTERED)]
    assert "genesis" in verdict.breaks[0].what


def test_an_empty_log_is_intact_and_older_unchained_entries_are_mentioned() -> None:
    assert verify([]).ok and verify([]).head_sha256 == GENESIS

    verdict = verify(chain(2), head_hint=2, before_chain=7)

    assert verdict.ok and verdict.summary().endswith(
        "the chain starts after 7 older entries, which carry no hash"
    )


def test_a_time_without_zone_is_read_as_utc_so_a_naive_reader_gets_the_same_hash() -> None:
    entry = chain(1)[0]

    assert dataclasses.replace(entry, at=entry.at.replace(tzinfo=None)).computed() == entry.sha256


def _content(entry: ChainEntry) -> tuple[str, str, str, str, str, dt.datetime]:
    return entry.person, entry.role, entry.action, entry.target, entry.details, entry.at
