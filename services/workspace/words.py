"""How the workspace's pages say times and codes: the plant's time zone, one format; a code with its meaning.

Every time a page shows goes through the ``when`` filter ("7 Dec 2026, 11:18 SAST"); ``when_tag``
wraps the same text in ``<time datetime="…">`` with the instant in UTC, so a machine (or a test)
reads the exact instant. Exports keep ISO 8601. The zone is the shared setting COC_PLANT_TIMEZONE
(``shared.settings.CocSettings.plant_timezone``), the one validation's calendar rules use.
``coded`` shows a certificate value with its meaning beside a code (``shared.codes``): "D — Germany".
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from zoneinfo import ZoneInfo

from jinja2 import Environment
from markupsafe import Markup, escape

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


def install(env: Environment, zone: dt.tzinfo = DEFAULT_ZONE) -> None:
    """Register the filters on a template environment, saying times in ``zone``."""
    env.filters["when"] = partial(when, zone=zone)
    env.filters["when_tag"] = partial(when_tag, zone=zone)
    env.filters["coded"] = coded
    env.globals["code_tables"] = tables()  # the pages name where the meanings come from
