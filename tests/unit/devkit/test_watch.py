"""The status watch's tallies follow each event, so `at_rest` and `wait` need no scan of every VIN."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from devkit.watch import StatusWatch, at_rest
from shared.contracts.events import State, StatusEvent

pytestmark = pytest.mark.unit

STAGES = {State.RECEIVED: "intake", State.BLOCKED: "validation", State.ARCHIVED: "archive"}


def event(vin: str, revision: int, state: State, at: dt.datetime) -> bytes:
    return (
        StatusEvent(
            vin=vin,
            record_id=f"{vin}:{revision}",
            revision=revision,
            stage=STAGES[state],
            state=state,
            time=at,
            service="test",
        )
        .model_dump_json()
        .encode()
    )


def test_archived_stateless_and_settled_follow_each_event_and_a_newer_revision() -> None:
    now = dt.datetime.now(dt.UTC)
    watch = StatusWatch("unused:9092", {"A": 1, "B": 1}, out=lambda _line: None)
    assert (watch.archived, watch.stateless, watch.settled_vins) == (set(), {"A", "B"}, set())
    assert not at_rest(watch)

    watch._take(event("A", 1, State.RECEIVED, now))
    watch._take(event("A", 1, State.ARCHIVED, now))
    assert (watch.archived, watch.stateless, watch.settled_vins) == ({"A"}, {"B"}, {"A"})
    assert not at_rest(watch)  # B has no state yet

    watch._take(event("B", 1, State.BLOCKED, now))
    assert (watch.stateless, watch.settled_vins) == (set(), {"A", "B"})
    assert not at_rest(watch)  # B waits, but an event came just now
    assert at_rest(watch, quiet_s=-1)  # ... and nothing came since

    watch._take(event("A", 2, State.RECEIVED, now))  # a correction: A is on its way again
    assert (watch.archived, watch.settled_vins) == (set(), {"B"})
    watch.add({"A": 2})
    assert watch.settled_vins == {"B"}
    watch._take(event("A", 2, State.ARCHIVED, now))
    watch._take(event("B", 1, State.ARCHIVED, now))
    assert at_rest(watch)
    assert watch.latest_at == pytest.approx(now.timestamp())


def test_at_rest_waits_the_quiet_time_after_the_latest_event() -> None:
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    watch = StatusWatch("unused:9092", {"A": 1}, out=lambda _line: None)
    watch._take(event("A", 1, State.BLOCKED, earlier))
    assert at_rest(watch, quiet_s=30)
    watch._take(event("A", 1, State.BLOCKED, dt.datetime.fromtimestamp(time.time(), dt.UTC)))
    assert not at_rest(watch, quiet_s=30)
