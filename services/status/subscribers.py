"""Status's subscriber: status events in batches, folded into the read model; nothing out but DLQ entries."""

from __future__ import annotations

from services.status.adapters.records import StatusStore
from services.status.settings import StatusSettings
from shared import topics
from shared.contracts.events import StatusEvent
from shared.stage import Stage

BATCH = 500  # events folded together: one read and at most one write per VIN per batch


def register(stage: Stage[StatusSettings], store: StatusStore) -> None:
    """Fold events a batch at a time; a database fault is retried, the batch uncommitted.

    Every status event of a record passes here (about six per vehicle), so the
    events are read in batches, each VIN is read and written once per batch, and
    the board's counters move once per batch (``StatusStore.apply_many``).
    """

    async def on_status(events: list[StatusEvent]) -> None:
        await store.apply_many(events)

    stage.consume_batches(topics.STATUS, StatusEvent, on_status, max_records=BATCH)
