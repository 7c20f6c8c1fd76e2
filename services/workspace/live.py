"""Live updates to the open pages (Server-Sent Events), fed by the status topic.

The workspace reads ``coc.status.v1`` from its end, in no consumer group (each
instance feeds its own pages). Pages do not get every event: at most once per
``interval`` the board's counts are fetched once and sent to every open board,
and each open record page hears about events of its own VIN. A page that
cannot keep up loses updates, never the workspace's memory: queues are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.contracts.events import StatusEvent

QUEUE_SIZE = 16  # updates a page may fall behind before it loses the oldest
# The read model follows the topic a moment later (status folds at most once a second, and its
# board answer is shared for two seconds): once the events stop, the board is sent again after
# these pauses, so it ends on the counts of the last event, not of the one before.
TRAILING_S = (4.0, 10.0)
HEARTBEAT_S = 15.0  # a comment line keeps proxies from closing an idle stream


@dataclass(eq=False)
class Listener:
    """One open page: the VIN it shows (None: the board) and its queue of messages."""

    vin: str | None
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def offer(self, message: str) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(message)


class LiveFeed:
    def __init__(
        self,
        board: Callable[[], Awaitable[dict[str, Any]]],
        interval: float,
        trailing: tuple[float, ...] = TRAILING_S,
    ) -> None:
        self._board, self._interval, self._trailing = board, interval, trailing
        self._listeners: set[Listener] = set()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def take(self, events: list[StatusEvent]) -> None:
        """Status events from the topic: record pages hear of theirs, boards of a change."""
        if not events:
            return
        self._changed.set()
        for listener in self._listeners:
            if listener.vin is None:
                continue
            mine = [e for e in events if e.vin == listener.vin]
            if mine:
                last = mine[-1]
                payload = {"vin": last.vin, "revision": last.revision, "state": last.state.value}
                listener.offer(message("record", payload))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="workspace-live-board")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self._send_board()
            await asyncio.sleep(self._interval)
            for pause in self._trailing:
                if self._changed.is_set():
                    break  # more events: the loop sends the board again at once
                try:
                    await asyncio.wait_for(self._changed.wait(), pause)
                except TimeoutError:
                    await self._send_board()  # quiet since: the read model has caught up

    async def _send_board(self) -> None:
        if not any(listener.vin is None for listener in self._listeners):
            return
        try:
            board = message("board", await self._board())
        except Exception:  # the status service away: the next change tries again
            return
        for listener in list(self._listeners):
            if listener.vin is None:
                listener.offer(board)

    @contextlib.asynccontextmanager
    async def listen(self, vin: str | None) -> AsyncIterator[Listener]:
        listener = Listener(vin)
        self._listeners.add(listener)
        try:
            yield listener
        finally:
            self._listeners.discard(listener)


def message(event: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event: its name and one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


async def stream(listener: Listener, disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[str]:
    """The text of the event stream of one page, until the page goes away."""
    yield "retry: 3000\n\n"
    while not await disconnected():
        try:
            yield await asyncio.wait_for(listener.queue.get(), timeout=HEARTBEAT_S)
        except TimeoutError:
            yield ": keep-alive\n\n"
