"""Status's subscriber: status events held, then folded into the read model; nothing out but DLQ entries."""

from __future__ import annotations

from services.status.adapters.writer import RecordWriter
from services.status.settings import StatusSettings
from shared import topics
from shared.contracts.events import StatusEvent
from shared.held import HoldPolicy
from shared.stage import Stage

MB = 1_000_000


def policy_of(settings: StatusSettings) -> HoldPolicy:
    """When held status events are folded (``shared.held``)."""
    return HoldPolicy(
        interval_s=settings.status_fold_interval_s,
        flood_keys=settings.status_flood_vins,
        max_s=max(settings.status_hold_max_s, settings.status_fold_interval_s),
        max_bytes=int(settings.status_hold_mb * MB),
    )


def register(stage: Stage[StatusSettings], records: RecordWriter) -> None:
    """Fold the events held since the last write, each VIN read and written once (``apply_many``).

    Every status event of a record passes here (five per vehicle on its way),
    and the database's cost is per record written, not per event. So events
    are held between two writes (``Stage.consume_held``): at a line's pace for
    ``status_fold_interval_s``, so a vehicle that passed several stages
    meanwhile costs one write of its record; under a flood (more than
    ``status_flood_vins`` vehicles moved in that time: a backlog, thousands of
    builds published at once) for up to ``status_hold_max_s``, since a
    vehicle's events then lie many seconds apart on the topic; at once when
    the topic goes quiet. The offsets are committed after the write, so a crash
    loses nothing: the held events are read again and fold to the same records.
    """
    interval = stage.settings.status_fold_interval_s
    stage.consume_held(
        topics.STATUS,
        StatusEvent,
        records.apply_many,
        policy=policy_of(stage.settings),
        max_records=stage.settings.status_batch,
        gather_ms=int(interval * 500),  # half the interval: the fold never waits on the broker
    )
