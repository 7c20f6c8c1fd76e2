"""The live board ends on the read model's counts after the last event, though the read model lags the topic."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from services.workspace.live import LiveFeed
from shared.contracts.events import State, StatusEvent

pytestmark = pytest.mark.unit


def event(vin: str) -> StatusEvent:
    return StatusEvent(
        vin=vin,
        record_id=f"{vin}:1",
        revision=1,
        stage="archive",
        state=State.ARCHIVED,
        time=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        service="archive@test:1",
    )


async def test_the_board_is_sent_again_once_quiet_so_a_lagging_read_model_is_caught_up() -> None:
    archived = 0

    async def board() -> dict[str, Any]:
        return {"archived": archived}

    feed = LiveFeed(board, interval=0.01, trailing=(0.1, 0.2))
    await feed.start()
    try:
        async with feed.listen(None) as page:
            feed.take([event("V1")])  # the event arrives before the read model folded it
            first = json.loads((await asyncio.wait_for(page.queue.get(), 2)).split("data: ")[1])
            assert first == {"archived": 0}
            archived = 1  # the read model folds it a moment later; no event says so
            later = json.loads((await asyncio.wait_for(page.queue.get(), 2)).split("data: ")[1])
            assert later == {"archived": 1}
    finally:
        await feed.stop()
