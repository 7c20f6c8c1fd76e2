"""Held messages: grouped by key in order, the offsets they cover, and when they are due."""

from __future__ import annotations

from shared.held import Held, HoldPolicy

POLICY = HoldPolicy(interval_s=1.0, flood_keys=3, max_s=20.0, max_bytes=1_000)


def held_of(keys: list[bytes], at: float = 100.0) -> Held:
    held = Held()
    for offset, key in enumerate(keys):
        held.add("p0", offset, key, key + b"-body", at)
    return held


def test_bodies_are_grouped_by_key_in_arrival_order_and_each_key_stays_in_one_chunk() -> None:
    held = Held()
    for offset, (key, body) in enumerate([(b"A", b"a1"), (b"B", b"b1"), (b"A", b"a2"), (b"C", b"c1")]):
        held.add("p0", offset, key, body, 10.0)
    held.add("p1", 7, b"B", b"b2", 11.0)

    assert held.parts(2) == [[b"A", b"B"], [b"C"]]
    assert [held.bodies(part) for part in held.parts(2)] == [[b"a1", b"a2", b"b1", b"b2"], [b"c1"]]
    assert held.bodies([b"C", b"A"]) == [b"c1", b"a1", b"a2"]
    assert held.offsets == {"p0": 4, "p1": 8}  # the offset after the last one taken, per partition
    assert (held.count, held.size, held.since) == (5, 10, 10.0)


def test_a_message_already_dealt_with_counts_only_for_its_offset() -> None:
    held = Held()
    held.add("p0", 41, b"A", None, 5.0)  # broken: kept for the DLQ elsewhere

    assert held and held.offsets == {"p0": 42}
    assert held.parts(10) == [] and held.count == 0 and held.size == 0


def test_take_hands_everything_over_and_leaves_nothing_held() -> None:
    held = held_of([b"A", b"B"])
    taken = held.take()

    assert not held and held.parts(10) == [] and held.size == 0 and held.count == 0
    assert taken.bodies([b"A", b"B"]) == [b"A-body", b"B-body"] and taken.offsets == {"p0": 2}
    held.add("p0", 2, b"C", b"c", 200.0)
    assert held.since == 200.0 and taken.since == 100.0  # the clock starts again with the next message
    assert held.bodies([b"C"]) == [b"c"] and taken.bodies([b"A"]) == [b"A-body"]  # apart from now on


def test_at_a_lines_pace_what_is_held_is_due_after_the_interval() -> None:
    held = held_of([b"A", b"B", b"A"])
    assert not POLICY.due(held, 100.5)
    assert POLICY.due(held, 101.0)


def test_under_a_flood_it_is_held_on_until_the_longest_hold() -> None:
    held = held_of([b"A", b"B", b"C", b"D"])  # more keys than flood_keys
    assert not POLICY.due(held, 101.0)
    assert not POLICY.due(held, 119.9)
    assert POLICY.due(held, 120.0)


def test_a_quiet_topic_or_the_byte_bound_makes_it_due_at_once() -> None:
    flood = held_of([b"A", b"B", b"C", b"D"])
    assert POLICY.due(flood, 100.0, quiet=True)
    big = Held()
    big.add("p0", 0, b"A", b"x" * 1_000, 100.0)
    assert POLICY.due(big, 100.0)


def test_nothing_held_is_never_due() -> None:
    assert not POLICY.due(Held(), 1_000.0, quiet=True)
