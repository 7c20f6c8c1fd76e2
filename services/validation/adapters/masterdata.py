"""Reading the compacted master-data topic (plants, vehicle groups) from the beginning, before any record is validated."""

from __future__ import annotations

from shared import topics
from shared.contracts.masterdata import MasterDataChange
from shared.kafka import read_contracts
from shared.settings import CocSettings


async def read_all(settings: CocSettings) -> list[MasterDataChange]:
    """Every plant and group change on the topic up to its current end, in topic order."""
    return [found for found, _record in await read_contracts(settings, topics.MASTERDATA, MasterDataChange)]
