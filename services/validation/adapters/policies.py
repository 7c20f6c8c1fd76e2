"""Reading the compacted policies topic from the beginning, before any record is validated."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from shared import topics
from shared.contracts.policies import PolicyChange
from shared.kafka import read_to_end
from shared.settings import CocSettings

log = logging.getLogger(__name__)


async def read_all(settings: CocSettings) -> list[PolicyChange]:
    """Every policy change on the topic up to its current end, in topic order.

    Unusable changes are skipped here; the live subscriber that follows sends
    them to the DLQ with the reason.
    """
    changes: list[PolicyChange] = []
    for record in await read_to_end(settings, topics.POLICIES):
        try:
            changes.append(PolicyChange.model_validate_json(record.value or b""))
        except ValidationError:
            log.warning("skipping an unusable policy change at offset %s", record.offset)
    return changes
