"""Reading the compacted policies topic from the beginning, before any record is validated."""

from __future__ import annotations

from shared import topics
from shared.contracts.policies import PolicyChange
from shared.kafka import read_contracts
from shared.settings import CocSettings


async def read_all(settings: CocSettings) -> list[PolicyChange]:
    """Every policy change on the topic up to its current end, in topic order (the newest per key last)."""
    return [found for found, _record in await read_contracts(settings, topics.POLICIES, PolicyChange)]
