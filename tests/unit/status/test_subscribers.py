"""The status fold's pace: a partial batch waits out the interval, a full one (a backlog) does not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.status import subscribers
from services.status.settings import StatusSettings
from shared.contracts.events import State, StatusEvent

Handler = Callable[[list[StatusEvent]], Awaitable[None]]


class Stage:
    """What ``register`` uses of a stage: its settings, and the batch subscription it makes."""

    def __init__(self, settings: StatusSettings) -> None:
        self.settings = settings
        self.handler: Handler | None = None
        self.options: dict[str, Any] = {}

    def consume_batches(self, topic: str, model: type[StatusEvent], handler: Handler, **options: Any) -> None:
        self.handler, self.options = handler, options


class Store:
    def __init__(self) -> None:
        self.folded: list[int] = []

    async def apply_many(self, events: list[StatusEvent]) -> int:
        self.folded.append(len(events))
        return len(events)


def events(n: int) -> list[StatusEvent]:
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    return [
        StatusEvent(
            vin=f"WVWZZZ1JZXW{i:06d}",
            record_id=f"WVWZZZ1JZXW{i:06d}:1",
            revision=1,
            stage="intake",
            state=State.RECEIVED,
            time=at,
            service="intake@test:1",
        )
        for i in range(n)
    ]


async def test_a_full_batch_is_followed_at_once_and_a_partial_one_waits_out_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(subscribers.asyncio, "sleep", sleep)
    stage, store = Stage(StatusSettings(status_batch=3, status_fold_interval_s=2.0)), Store()
    subscribers.register(stage, store)  # type: ignore[arg-type]  # the parts register uses
    assert stage.handler is not None and stage.options["max_records"] == 3

    await stage.handler(events(3))  # a backlog: the next batch is taken at once
    assert slept == []
    await stage.handler(events(2))  # caught up: the next batch gathers for the interval
    assert store.folded == [3, 2]
    assert len(slept) == 1 and 1.5 < slept[0] <= 2.0
