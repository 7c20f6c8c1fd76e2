"""How the workspace's pages say times and codes: the plant's time zone, one format; a code with its meaning.

Every time a page shows goes through the ``when`` filter ("7 Dec 2026, 11:18 SAST"); ``when_tag``
wraps the same text in ``<time datetime="…">`` with the instant in UTC, so a machine (or a test)
reads the exact instant. Exports keep ISO 8601. The zone is the shared setting COC_PLANT_TIMEZONE
(``shared.settings.CocSettings.plant_timezone``), the one validation's calendar rules use.
``coded`` shows a certificate value with its meaning beside a code (``shared.codes``): "D — Germany".
``said`` tells a person's action from the audit log as a sentence, where the log keeps its details as data.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from markupsafe import Markup, escape

from services.workspace.identity import AuditEntry
from shared.codes import decoded, tables
from shared.settings import CocSettings

DEFAULT_ZONE = ZoneInfo(str(CocSettings.model_fields["plant_timezone"].default))
NO_TIME = "–"  # what a page shows where a time is not known
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # English


def instant(value: object) -> dt.datetime | None:
    """The instant ``value`` stands for: an aware datetime or an ISO 8601 text (a naive one is UTC)."""
    if isinstance(value, dt.datetime):
        found = value
    elif isinstance(value, str) and value.strip():
        try:
            found = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return found.replace(tzinfo=dt.UTC) if found.tzinfo is None else found


def when(value: object, zone: dt.tzinfo = DEFAULT_ZONE) -> str:
    """ "7 Dec 2026, 11:18 SAST": the time in the plant's zone; a text that is no time comes back as it is."""
    found = instant(value)
    if found is None:
        return NO_TIME if value is None or value == "" else str(value)
    local = found.astimezone(zone)
    name = local.tzname() or local.strftime("%z")
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {local:%H:%M} {name}"


def day(value: object) -> str:
    """A calendar date as people write it: "23 Sep 2024" (a date, or ISO text); other text stays as it is."""
    found: dt.date | None = (
        value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else None
    )
    if found is None and isinstance(value, str):
        try:
            found = dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            found = None
    if found is None:
        return NO_TIME if value is None or value == "" else str(value)
    return f"{found.day} {MONTHS[found.month - 1]} {found.year}"


def iso(value: object) -> str | None:
    """The instant in UTC, ISO 8601 to the millisecond with a Z (a valid HTML datetime attribute)."""
    found = instant(value)
    if found is None:
        return None
    return found.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def when_tag(value: object, zone: dt.tzinfo = DEFAULT_ZONE) -> Markup:
    """``when``'s text in a ``<time>`` element whose ``datetime`` holds the instant in UTC."""
    machine = iso(value)
    text = escape(when(value, zone))
    if machine is None:
        return Markup(text)
    return Markup(f'<time datetime="{escape(machine)}">{text}</time>')


def coded(value: object, element: str) -> str:
    """``{{ value|coded('IntendedCountryRegistration') }}`` → "D — Germany" (the element, or a dotted path to it)."""
    return "" if value is None else decoded(element, str(value))


# -- people's actions as sentences ------------------------------------------------------------------


def _quoted(comment: object) -> str:
    return f": ‘{comment}’" if comment else ""


def _name(target: str) -> str:
    return target.split(":", 1)[1] if ":" in target else target


def _policy(entry: AuditEntry, change: Mapping[str, Any]) -> str:
    before, after = change["policy"]
    was = "" if before in (None, "default") else f" (was {before})"
    return f"{entry.person} set group {_name(entry.target)} to {after}{was}{_quoted(change.get('comment'))}"


def _master(entry: AuditEntry, change: Mapping[str, Any]) -> str:
    kind, _, name = entry.target.partition(":")
    what = {"group": "vehicle group", "plant": "plant"}.get(kind, kind)
    return f"{entry.person} added {what} {name or entry.target} to the master data{_quoted(change.get('comment'))}"


def _review(entry: AuditEntry, change: Mapping[str, Any]) -> str:
    verb = {"accept": "accepted", "reject": "rejected"}.get(str(change.get("decision")), "reviewed")
    revision = change.get("revision")
    what = f"revision {revision}" if revision is not None else _name(entry.target)
    return f"{entry.person} {verb} {what}{_quoted(change.get('comment'))}"


def _reissue(entry: AuditEntry, change: Mapping[str, Any]) -> str:
    count = change.get("certificates")
    many = f"{count} certificate{'' if count == 1 else 's'}" if count is not None else "certificates"
    return f"{entry.person} started a re-issue of {many} after a change of approval {_name(entry.target)}"


def _approval(entry: AuditEntry, change: Mapping[str, Any]) -> str:
    changed = len(change.get("changed") or []) + int(change.get("more") or 0)
    how = (
        "published a new approval"
        if change.get("new")
        else f"changed {changed} field{'' if changed == 1 else 's'} of approval"
    )
    source = f" from {change['file']}" if change.get("file") else ""
    return f"{entry.person} {how} {_name(entry.target)}{source}"


def _plain(value: object) -> str:
    if isinstance(value, list | tuple):
        return " → ".join("none" if v is None else str(v) for v in value)
    return "none" if value is None else str(value)


_SENTENCES: dict[str, Callable[[AuditEntry, Mapping[str, Any]], str]] = {
    "policy": _policy,
    "master data": _master,
    "review:accept": _review,
    "review:reject": _review,
    "re-issue": _reissue,
    "approval": _approval,
}


def said(entry: AuditEntry) -> str:
    """A person's action as a sentence: "Jane Smith set group POLO-EU to review (was default): ‘first batch’".

    An action without its own sentence still reads as words: who, what, on what, and each detail.
    """
    change = entry.change if isinstance(entry.change, Mapping) else {}
    shaped = _SENTENCES.get(entry.action)
    if shaped is not None:
        try:
            return shaped(entry, change)
        except (TypeError, ValueError, KeyError):
            pass  # details of an older shape: told plainly below
    details = "; ".join(f"{key.replace('_', ' ')} {_plain(value)}" for key, value in sorted(change.items()))
    return f"{entry.person}: {entry.action} on {entry.target}" + (f" ({details})" if details else "")


def said_row(row: Mapping[str, Any]) -> str:
    """An audit log row (``audit_chain.export_rows``: details as stored JSON) as ``said`` tells it; "" if it cannot."""
    try:
        change = json.loads(str(row.get("details") or ""))
    except ValueError:
        return ""
    at = instant(row.get("time"))
    if not isinstance(change, dict) or at is None or not row.get("who"):
        return ""
    return said(AuditEntry(str(row["who"]), str(row["action"]), str(row["target"]), change, at))


def install(env: Environment, zone: dt.tzinfo = DEFAULT_ZONE) -> None:
    """Register the filters on a template environment, saying times in ``zone``."""
    env.filters["when"] = partial(when, zone=zone)
    env.filters["when_tag"] = partial(when_tag, zone=zone)
    env.filters["day"] = day
    env.filters["coded"] = coded
    env.filters["said"] = said
    env.filters["said_row"] = said_row
    env.globals["code_tables"] = tables()  # the pages name where the meanings come from
