"""Status's pure logic of the archived list: its lanes, what a record adds to them, and where a page ends.

A million archived vehicles cannot be searched by a filter on FerretDB (only
``_id`` equality and ``$in`` are answered from an index, see ``shared.mongo``).
So the archived list is kept as *lanes* whose documents are found by ``_id``
alone. A lane is one plant day (the date in ``COC_PLANT_TIMEZONE`` of the
archive event) and one filter combination: all vehicles, one country, one
group, or one country and group (``ANY`` where a filter is not set). Each
archived vehicle is entered in the four lanes of its day, as part of a *run*:
the vehicles one write entered in the lane, kept as one document
``<lane>|<run number>``, numbered 1, 2, 3... per lane. A page of a search is
then a walk from the newest run of the newest day down, reading a few runs at a
time by ``_id``. Per lane two small documents: ``top|<lane>``, the highest run
number written, and ``lane|<lane>``, how many vehicles are archived in it now
(a counter moved like the board's, see ``tally``), which gives totals and lets
a walk skip empty days.

An entry is not removed when its vehicle leaves the lane (a correction's new
revision, a country told later): a read checks each entry against the
vehicle's index entry and leaves out those it no longer describes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from services.status.fold import NO_COUNTRY, StatusRecord
from services.status.tally import NO_GROUP, Tally
from shared.contracts.events import State

ANY = "~"  # a lane's filter not set (neither a Vienna code nor a group name holds it)
DAY_FORMAT = "%Y-%m-%d"
MAX_DAYS = 3_660  # a search spans at most ten years of plant days


class BadArchivedQuery(ValueError):
    """A search of the archived list that cannot be answered; the message names the parameter."""


def plant_day(time: dt.datetime, zone: dt.tzinfo) -> str:
    """The plant's date of an instant, as a lane names it."""
    return time.astimezone(zone).strftime(DAY_FORMAT)


def lane(day: str, country: str | None = None, group: str | None = None) -> str:
    """A lane's name: the day, then the country and the group, or ``ANY`` where not filtered."""
    return f"{day}|{country or ANY}|{group or ANY}"


def lanes_of(record: StatusRecord | None, zone: dt.tzinfo) -> list[str]:
    """The four lanes an archived record is in (none for a record not archived)."""
    if record is None or record.state is not State.ARCHIVED:
        return []
    return lanes_at(record.updated_at, record.country, record.vehicle_group, zone)


def lanes_at(time: dt.datetime, country: str | None, group: str | None, zone: dt.tzinfo) -> list[str]:
    """The four lanes of a vehicle archived at ``time`` with this country and group."""
    day = plant_day(time, zone)
    country, group = country or NO_COUNTRY, group or NO_GROUP
    return [lane(day), lane(day, country), lane(day, None, group), lane(day, country, group)]


def lane_change(before: StatusRecord | None, after: StatusRecord, zone: dt.tzinfo) -> Tally:
    """How the lanes' counters (``lane|<lane>``) move when ``before`` is replaced by ``after``."""
    change: Tally = {}
    for name in lanes_of(before, zone):
        change[f"lane|{name}"] = change.get(f"lane|{name}", 0) - 1
    for name in lanes_of(after, zone):
        change[f"lane|{name}"] = change.get(f"lane|{name}", 0) + 1
    return {key: n for key, n in change.items() if n}


def entered(before: StatusRecord | None, after: StatusRecord, zone: dt.tzinfo) -> bool:
    """Whether writing ``after`` enters the vehicle in lanes: newly archived, or archived differently."""
    if after.state is not State.ARCHIVED:
        return False
    return before is None or (
        lanes_of(before, zone) != lanes_of(after, zone)
        or (before.updated_at, before.revision, before.record_type)
        != (after.updated_at, after.revision, after.record_type)
    )


def entry_of(record: StatusRecord) -> dict[str, Any]:
    """One vehicle in a run: what the archived list shows of it, and what its check compares."""
    return {
        "vin": record.vin,
        "record_id": record.record_id,
        "revision": record.revision,
        "at": record.updated_at,
        "group": record.vehicle_group,
        "country": record.country,
        "record_type": record.record_type,
    }


def packed(entries: list[dict[str, Any]]) -> bytes:
    """A run's entries as kept: one JSON value (FerretDB decodes a document per field, and slowly).

    Measured on FerretDB, a run of 100 entries: read 10 ms as fields, about 1 ms packed.
    """
    return json.dumps([{**e, "at": e["at"].astimezone(dt.UTC).isoformat()} for e in entries]).encode()


def unpacked(raw: bytes) -> list[dict[str, Any]]:
    """A run's entries as ``entry_of`` made them."""
    return [{**e, "at": dt.datetime.fromisoformat(e["at"])} for e in json.loads(raw)]


@dataclass(frozen=True)
class Position:
    """An entry of a walk: its day, its run in the day's lane, and its place in the run."""

    day: str
    run: int
    index: int

    def token(self) -> str:
        raw = f"a|{self.day}|{self.run}|{self.index}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            kind, day, run, index = raw.split("|")
            dt.datetime.strptime(day, DAY_FORMAT)
            position = cls(day, int(run), int(index))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise BadArchivedQuery("after: not a cursor this list gave (use the next of a page)") from None
        if kind != "a" or position.run < 1 or position.index < 0:
            raise BadArchivedQuery("after: not a cursor this list gave (use the next of a page)")
        return position


@dataclass(frozen=True)
class ArchivedQuery:
    """One page of the archived list: plant days ``first``..``last`` (inclusive), the filters, where to go on."""

    first: dt.date
    last: dt.date
    country: str | None = None
    group: str | None = None
    record_type: str | None = None
    size: int = 50
    page: int = 1
    after: Position | None = None

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise BadArchivedQuery("archived_from: later than archived_to")
        if (self.last - self.first).days >= MAX_DAYS:
            raise BadArchivedQuery(f"archived_from: a search spans at most {MAX_DAYS} days")

    def days(self) -> list[str]:
        """The days searched, newest first (a cursor's day and older when going on)."""
        last = self.last
        if self.after is not None:
            last = min(last, dt.date.fromisoformat(self.after.day))
        span = (last - self.first).days + 1
        return [(last - dt.timedelta(days=n)).strftime(DAY_FORMAT) for n in range(max(0, span))]

    def lane(self, day: str) -> str:
        return lane(day, self.country, self.group)


def describes(entry: dict[str, Any], index: dict[str, Any] | None, lane_name: str) -> bool:
    """Whether the vehicle's index entry still says what the run's entry says (archived then, in this lane)."""
    if index is None or index.get("state") != State.ARCHIVED.value or index.get("updated_at") != entry["at"]:
        return False
    _, country, group = lane_name.split("|")
    return (country == ANY or (index.get("country") or NO_COUNTRY) == country) and (
        group == ANY or (index.get("group") or NO_GROUP) == group
    )
