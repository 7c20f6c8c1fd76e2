"""The status fold's hold: events held per the settings, folded by the store's apply_many."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.status import subscribers
from services.status.settings import StatusSettings
from shared import topics
from shared.contracts.events import StatusEvent
from shared.held import Held

Write = Callable[[list[StatusEvent]], Awaitable[object]]


class Stage:
    """What ``register`` uses of a stage: its settings, and the held subscription it makes."""

    def __init__(self, settings: StatusSettings) -> None:
        self.settings = settings
        self.subscribed: dict[str, Any] = {}

    def consume_held(self, topic: str, model: type[StatusEvent], write: Write, **options: Any) -> None:
        self.subscribed = {"topic": topic, "model": model, "write": write, **options}


class Store:
    async def apply_many(self, events: list[StatusEvent]) -> int:
        return len(events)


def test_the_status_topic_is_held_and_folded_by_apply_many_with_the_settings_bounds() -> None:
    settings = StatusSettings(
        status_fold_interval_s=2.0,
        status_flood_vins=500,
        status_hold_max_s=30.0,
        status_hold_mb=8.0,
        status_batch=3_000,
    )
    stage, store = Stage(settings), Store()
    subscribers.register(stage, store)  # type: ignore[arg-type]  # the parts register uses

    got = stage.subscribed
    assert (got["topic"], got["model"]) == (topics.STATUS, StatusEvent)
    assert got["write"] == store.apply_many
    assert got["max_records"] == 3_000 and got["gather_ms"] == 1_000
    policy = got["policy"]
    assert (policy.interval_s, policy.flood_keys, policy.max_s, policy.max_bytes) == (
        2.0,
        500,
        30.0,
        8_000_000,
    )


def test_a_longest_hold_below_the_interval_is_the_interval() -> None:
    policy = subscribers.policy_of(StatusSettings(status_fold_interval_s=5.0, status_hold_max_s=1.0))
    held = Held()
    for n in range(2_000):  # a flood: more VINs than status_flood_vins
        held.add("p0", n, f"VIN{n}".encode(), b"{}", 0.0)

    assert not policy.due(held, 4.9)
    assert policy.due(held, 5.0)
