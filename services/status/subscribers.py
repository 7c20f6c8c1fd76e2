"""Status's subscriber: status events in batches, folded into the read model; nothing out but DLQ entries."""

from __future__ import annotations

import asyncio
import time

from services.status.adapters.records import StatusStore
from services.status.settings import StatusSettings
from shared import topics
from shared.contracts.events import StatusEvent
from shared.stage import Stage


def register(stage: Stage[StatusSettings], store: StatusStore) -> None:
    """Fold events a batch at a time; a database fault is retried, the batch uncommitted.

    Every status event of a record passes here (about six per vehicle), so the
    events are read in batches, each VIN is read and written once per batch, and
    the board's counters move once per batch (``StatusStore.apply_many``). A
    batch is taken at most every ``status_fold_interval_s``: what arrives
    meanwhile waits in the broker, so a vehicle that passes several stages in
    that time costs the database one write of its record, not one per stage
    (the read model is then up to that interval behind the topic). A batch
    that took longer than the interval to fold is followed by a pause as long
    as it took: under a backlog the status service uses at most half of the
    database's time, the stages that make certificates the rest, and its
    batches grow, so each write covers more of a vehicle's events.
    """
    interval = stage.settings.status_fold_interval_s

    async def on_status(events: list[StatusEvent]) -> None:
        began = time.monotonic()
        await store.apply_many(events)
        took = time.monotonic() - began
        await asyncio.sleep(max(interval - took, took if took > interval else 0.0))

    stage.consume_batches(topics.STATUS, StatusEvent, on_status, max_records=stage.settings.status_batch)
