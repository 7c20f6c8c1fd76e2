"""Status's pure counting: what a folded record adds to the board's counters, and the board from them.

The readiness board must answer at a million records without counting them
(FerretDB's ``$group`` reads every document, see ``shared.mongo``). So each
record *contributes* to a few named counters, a function of the record alone
(``tallies``), and every write of a record moves the counters by the
difference between what the new and the old version contribute
(``tally_change``). Summed over any chain of writes, the differences telescope
to the contribution of the records as they stand: in order, shuffled or
repeated events give the same counts, because the fold gives the same records
and a repeat writes nothing. A recount computes the same contributions from the
stored documents and corrects the counters (see ``adapters.counters``).

Counter keys (``kind|…``):

- ``state|<state>|<group>``: vehicles in a state per vehicle group (``unknown`` when none);
- ``waiting|<owner>``: records waiting for a person (blocked, needs review, held)
  with at least one finding that team owns; ``findings|<owner>``: those findings;
- ``delivery|<state>``: archived vehicles whose certificate's delivery is in that state;
  ``deliveries|<country>|<state>``: the same per destination (the intended country, ``none`` when none);
- ``country|<state>|<country>``: vehicles in a state per destination (``none`` when no country);
- ``rtype|<record type>``: vehicles of a record type (C, I, V) once an event told it;
- ``record-type|<state>|<record type>``: vehicles in a state per record type (C complete, I incomplete,
  V completed; ``none`` while no event told it);
- ``code|<code>``: records waiting for a person with a finding of that code (the filters' choices);
- ``archived-min|<YYYY-MM-DDTHH:MM>`` and ``archived-hour|<YYYY-MM-DDTHH>``: vehicles
  whose current record is archived, by the minute and the hour of its archive
  event. A corrected revision moves the vehicle out of the bucket of its old
  certificate, so these count vehicles, the way ``by_state`` does.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from services.status.fold import NO_COUNTRY, StatusRecord
from shared.contracts.events import DELIVERY_STATES, State
from shared.contracts.findings import Owner

NO_GROUP = "unknown"  # readiness key of records whose group no event has told (e.g. rejected input)
NO_RECORD_TYPE = "none"  # readiness key of records whose record type no event has told (e.g. rejected input)
MINUTE, HOUR = "archived-min", "archived-hour"
MINUTE_FORMAT, HOUR_FORMAT = "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"

Tally = dict[str, int]


def state_key(state: State | str, group: str | None) -> str:
    return f"state|{State(state).value}|{group or NO_GROUP}"


def country_key(state: State | str, country: str | None) -> str:
    return f"country|{State(state).value}|{country or NO_COUNTRY}"


def record_type_key(state: State | str, record_type: str | None) -> str:
    return f"record-type|{State(state).value}|{record_type or NO_RECORD_TYPE}"


def facet_keys(record_type: str | None, codes: Iterable[str]) -> Tally:
    """``rtype|`` of a record whose type is known, and ``code|`` per finding code of a waiting record."""
    counts = {f"code|{code}": 1 for code in codes}
    if record_type:
        counts[f"rtype|{record_type}"] = 1
    return counts


def minute_key(time: dt.datetime) -> str:
    return f"{MINUTE}|{time.astimezone(dt.UTC).strftime(MINUTE_FORMAT)}"


def hour_key(time: dt.datetime) -> str:
    return f"{HOUR}|{time.astimezone(dt.UTC).strftime(HOUR_FORMAT)}"


def owner_keys(finding_owners: Iterable[str]) -> Tally:
    """``waiting|`` and ``findings|`` counts of one waiting record, from the owners of its findings."""
    owners = Counter(finding_owners)
    return {**{f"findings|{o}": n for o, n in owners.items()}, **{f"waiting|{o}": 1 for o in owners}}


def tallies(record: StatusRecord | None) -> Tally:
    """What one record adds to the counters (nothing for no record)."""
    if record is None:
        return {}
    counts = {
        state_key(record.state, record.vehicle_group): 1,
        country_key(record.state, record.country): 1,
        record_type_key(record.state, record.record_type): 1,
    }
    waiting = record.waiting
    if waiting:
        counts.update(owner_keys(finding.owner.value for finding in record.findings))
    counts.update(facet_keys(record.record_type, {f.code for f in record.findings} if waiting else ()))
    if record.state is State.ARCHIVED:
        counts[minute_key(record.updated_at)] = 1
        counts[hour_key(record.updated_at)] = 1
        if record.delivery is not None:
            counts[f"delivery|{record.delivery.state.value}"] = 1
            counts[f"deliveries|{record.country or NO_COUNTRY}|{record.delivery.state.value}"] = 1
    return counts


def tally_change(before: StatusRecord | None, after: StatusRecord) -> Tally:
    """How the counters move when ``before`` is replaced by ``after`` (zero moves left out)."""
    old, new = tallies(before), tallies(after)
    change = {key: new.get(key, 0) - old.get(key, 0) for key in old.keys() | new.keys()}
    return {key: n for key, n in change.items() if n}


def add(into: Tally, change: Mapping[str, int]) -> Tally:
    """Add ``change`` into ``into``, keeping negative and dropping zero counts (unlike ``Counter +``)."""
    for key, n in change.items():
        total = into.get(key, 0) + n
        if total:
            into[key] = total
        else:
            into.pop(key, None)
    return into


def in_window(key: str, now: dt.datetime) -> bool:
    """Whether a time-bucket key still matters to the board (the last hour, the last day)."""
    kind, _, stamp = key.partition("|")
    if kind == MINUTE:
        return stamp >= (now - dt.timedelta(hours=1)).astimezone(dt.UTC).strftime(MINUTE_FORMAT)
    if kind == HOUR:
        return stamp >= (now - dt.timedelta(hours=24)).astimezone(dt.UTC).strftime(HOUR_FORMAT)
    return True


def readiness_of(counts: Mapping[str, int], now: dt.datetime) -> dict[str, Any]:
    """The board from the counters.

    ``archived_last_hour`` sums the minute buckets of the last 60 minutes
    (the current minute included, so up to 61 minute buckets); ``archived_last_day``
    sums the hour buckets of the current hour and the 24 before it: the day is
    counted in whole hours.
    """
    by_state: dict[str, int] = {state.value: 0 for state in State if state not in DELIVERY_STATES}
    by_delivery: dict[str, int] = {state.value: 0 for state in State if state in DELIVERY_STATES}
    by_group: dict[str, dict[str, int]] = {}
    by_country: dict[str, dict[str, int]] = {}
    by_record_type: dict[str, dict[str, int]] = {}
    deliveries: dict[str, dict[str, int]] = {}
    open_findings = {owner.value: 0 for owner in Owner}
    waiting = {owner.value: 0 for owner in Owner}
    last_hour = last_day = 0
    for key, n in counts.items():
        kind, _, rest = key.partition("|")
        if kind == "state" and n:
            state, _, group = rest.partition("|")
            by_state[state] = by_state.get(state, 0) + n
            by_group.setdefault(group, {})[state] = n
        elif kind in ("country", "record-type", "deliveries") and n:
            first, _, second = rest.partition("|")
            if kind == "deliveries":
                deliveries.setdefault(first, {})[second] = n
            else:  # state first, then the destination or the record type
                (by_country if kind == "country" else by_record_type).setdefault(second, {})[first] = n
        elif kind == "findings":
            open_findings[rest] = open_findings.get(rest, 0) + n
        elif kind == "delivery":
            by_delivery[rest] = by_delivery.get(rest, 0) + n
        elif kind == "waiting":
            waiting[rest] = waiting.get(rest, 0) + n
        elif kind == MINUTE and in_window(key, now):
            last_hour += n
        elif kind == HOUR and in_window(key, now):
            last_day += n
    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "by_group": by_group,
        "by_country": by_country,
        "by_record_type": by_record_type,
        "deliveries": deliveries,
        "delivery_by_state": by_delivery,
        "archived_last_hour": last_hour,
        "archived_last_day": last_day,
        "open_findings_by_owner": open_findings,
        "waiting_by_owner": waiting,
    }


def facets_of(counts: Mapping[str, int]) -> dict[str, list[str]]:
    """The values the lists can be filtered by that some record has now, from the counters."""
    groups: set[str] = set()
    countries: set[str] = set()
    codes: set[str] = set()
    record_types: set[str] = set()
    for key, n in counts.items():
        if n <= 0:
            continue
        kind, _, rest = key.partition("|")
        if kind == "state":
            groups.add(rest.partition("|")[2])
        elif kind == "country":
            countries.add(rest.partition("|")[2])
        elif kind == "code":
            codes.add(rest)
        elif kind == "rtype":
            record_types.add(rest)
    groups.discard(NO_GROUP)
    countries.discard(NO_COUNTRY)
    return {
        "groups": sorted(groups),
        "codes": sorted(codes),
        "record_types": sorted(record_types),
        "countries": sorted(countries),
    }
