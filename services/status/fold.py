"""Status's pure logic: fold one status event into the read-model document of its VIN.

Status events of one VIN come from five stages and may arrive late, twice or,
after a rebalance, out of order. The fold decides which event speaks for the
record (design, "A record's life"): a newer revision supersedes an older one at
every stage; within a revision the later pipeline stage has the last word; within
a stage the later event does (validation goes blocked → validated when an
approval arrives). Being pure, it is tested without a database, and the store
only has to make its read-fold-write atomic per VIN.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.contracts.events import State, StatusEvent, stage_rank

TIMELINE_LIMIT = 20  # enough for a record and its corrections; every read of the document carries it
OPEN_STATES = frozenset({State.BLOCKED, State.NEEDS_REVIEW, State.HELD})  # waiting for a person

Document = dict[str, Any]


class StatusServiceError(Exception):
    """Base error of the status service."""


def fold(current: Document | None, event: StatusEvent) -> Document | None:
    """The VIN's new document after ``event``, or None when the event changes nothing."""
    if current is None:
        return _document(None, event)
    if event.revision == 0:
        return None  # unreadable revision: says something only about a VIN never seen before
    if supersedes(current, event):
        return _document(current, event)
    return _completed(current, event)


def supersedes(current: Document, event: StatusEvent) -> bool:
    """Whether ``event`` speaks for the record instead of the event the document holds."""
    if event.revision != current["revision"]:
        return bool(event.revision > current["revision"])
    rank, current_rank = stage_rank(event.stage), stage_rank(current["stage"])
    if rank != current_rank:
        return rank > current_rank
    if _same_word(current, event):
        return False  # a redelivery, or a stage repeating itself: nothing new
    return event_time(event) > current["updated_at"]


def _same_word(current: Document, event: StatusEvent) -> bool:
    """Same state and same findings: a repeat.

    The findings count because validation re-checks a blocked record when an
    approval arrives: still blocked, for another reason, is news for the
    worklist of another team.
    """
    return bool(current["state"] == event.state.value and current["findings"] == _findings(event))


def event_time(event: StatusEvent) -> dt.datetime:
    """The event's time as MongoDB keeps it (UTC, milliseconds), so a stored time compares equal."""
    time = event.time.astimezone(dt.UTC)
    return time.replace(microsecond=time.microsecond // 1000 * 1000)


def _document(current: Document | None, event: StatusEvent) -> Document:
    previous = current or {}
    return {
        "_id": event.vin,
        "vin": event.vin,
        "record_id": event.record_id,
        "revision": event.revision,
        "state": event.state.value,
        "stage": event.stage,
        "findings": _findings(event),
        "owner": event.owner.value if event.owner else None,
        # Render, signing and archive do not know the group: keep what intake and validation said.
        "vehicle_group": event.vehicle_group or previous.get("vehicle_group"),
        "build_id": event.build_id or previous.get("build_id"),
        "trace_id": event.trace_id,
        "updated_at": event_time(event),
        "timeline": [*previous.get("timeline", []), _entry(event)][-TIMELINE_LIMIT:],
        "seq": previous.get("seq", 0) + 1,
    }


def _completed(current: Document, event: StatusEvent) -> Document | None:
    """A late event of the same revision may still fill in the group or build id the document lacks.

    Without this, the group of a record whose validation event arrived after
    its render event would stay unknown, and readiness per group would depend
    on the order of delivery.
    """
    if event.revision != current["revision"]:
        return None
    filled = {
        name: value
        for name, value in (("vehicle_group", event.vehicle_group), ("build_id", event.build_id))
        if value and not current.get(name)
    }
    if not filled:
        return None
    return {**current, **filled, "seq": current["seq"] + 1}


def _findings(event: StatusEvent) -> list[dict[str, Any]]:
    return [finding.model_dump(mode="json") for finding in event.findings]


def _entry(event: StatusEvent) -> dict[str, Any]:
    return {
        "revision": event.revision,
        "stage": event.stage,
        "state": event.state.value,
        "time": event_time(event),
        "service": event.service,
        "reason": event.reason,
        "trace_id": event.trace_id,
    }
