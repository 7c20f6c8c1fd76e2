"""``shared.increments`` without a server: a failed write reaches every mover whose change it carried."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.increments import Increments


class Refusing:
    """A collection whose bulk writes fail after a moment (so other moves queue behind the first)."""

    def __init__(self) -> None:
        self.requests: list[list[Any]] = []

    async def insert_many(self, documents: list[Any], ordered: bool = True) -> None:
        return None

    async def bulk_write(self, requests: list[Any], ordered: bool = True) -> None:
        self.requests.append(requests)
        await asyncio.sleep(0.01)
        raise ConnectionError("database away")


async def test_a_failed_write_fails_every_move_it_carried_and_the_next_move_is_written_again() -> None:
    refusing = Refusing()
    increments = Increments(refusing, take_turns=False)  # type: ignore[arg-type]

    results = await asyncio.gather(*(increments.move({"a": 1}) for _ in range(5)), return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in results)
    assert len(refusing.requests) == 2  # the first move alone, then the four that queued behind it, merged
    with pytest.raises(ConnectionError):
        await increments.move({"b": 1})
    assert len(refusing.requests[-1]) == 1  # only the new move: a failed change is not carried again
