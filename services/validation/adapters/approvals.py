"""Reading the compacted approvals topic from the beginning, before any record is validated."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from shared import topics
from shared.contracts import Approval
from shared.kafka import read_to_end
from shared.settings import CocSettings

log = logging.getLogger(__name__)


async def read_all(settings: CocSettings) -> list[Approval]:
    """Every approval on the topic up to its current end, newest per key last.

    Unusable approvals are skipped here; the live subscriber that follows sends
    them to the DLQ with the reason.
    """
    approvals: list[Approval] = []
    for record in await read_to_end(settings, topics.APPROVALS):
        try:
            approvals.append(Approval.model_validate_json(record.value or b""))
        except ValidationError:
            log.warning("skipping an unusable approval at offset %s", record.offset)
    return approvals
