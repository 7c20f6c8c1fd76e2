"""The hash chain of the workspace's audit log, and its verifier: pure rules, no database.

Every entry carries a sequence number (1, 2, 3 … over the whole log) and the
SHA-256 of the entry before it; the first links to ``GENESIS``. An entry's own
hash is taken over a canonical serialisation of everything it says (who, their
roles, the action, its target, the details as stored, the time, its number and
the hash it links to), so:

- an entry whose content was changed no longer matches its hash (*altered*);
- an entry changed together with its stored hash no longer matches the link the
  next entry holds, and that link is covered by the next entry's own hash;
- a removed entry leaves a gap in the numbers (*missing*), and a removed tail
  leaves the log's head (a number only ever raised to a number taken) above the
  last entry.

Rewriting the whole tail consistently is what a chain alone cannot show: the
head's hash, written down by an auditor (``coc audit`` and every export show
it), is the anchor against that.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

GENESIS: Final = "0" * 64  # what the first entry links to


@dataclass(frozen=True)
class ChainEntry:
    """One entry of the audit log as the chain holds it."""

    seq: int
    person: str
    role: str  # the person's roles when they acted, comma-separated, sorted ("" for an operator's command)
    action: str
    target: str
    details: str  # the change as JSON text, exactly as stored: the hash is over these characters
    at: dt.datetime
    previous: str  # the SHA-256 (hex) of entry seq - 1, GENESIS for the first
    sha256: str  # the SHA-256 (hex) of this entry's canonical serialisation, as stored

    def computed(self) -> str:
        """The hash this entry's content has now."""
        return entry_hash(
            self.seq, self.person, self.role, self.action, self.target, self.details, self.at, self.previous
        )


def time_text(at: dt.datetime) -> str:
    """The time as the hash covers it: UTC, milliseconds (what BSON keeps); a time without zone is UTC."""
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return at.isoformat(timespec="milliseconds")


def canonical(
    seq: int, person: str, role: str, action: str, target: str, details: str, at: dt.datetime, previous: str
) -> bytes:
    """The bytes an entry's hash is taken over: one JSON object, keys sorted, no spaces, UTF-8."""
    fields = {
        "action": action,
        "details": details,
        "previous": previous,
        "role": role,
        "seq": seq,
        "target": target,
        "time": time_text(at),
        "who": person,
    }
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def entry_hash(
    seq: int, person: str, role: str, action: str, target: str, details: str, at: dt.datetime, previous: str
) -> str:
    return hashlib.sha256(canonical(seq, person, role, action, target, details, at, previous)).hexdigest()


def link(
    seq: int,
    previous: str,
    *,
    person: str,
    role: str,
    action: str,
    target: str,
    details: str,
    at: dt.datetime,
) -> ChainEntry:
    """The entry numbered ``seq`` that follows an entry whose hash is ``previous``."""
    if seq < 1:
        raise ValueError("an audit entry's number starts at 1")
    digest = entry_hash(seq, person, role, action, target, details, at, previous)
    return ChainEntry(seq, person, role, action, target, details, at, previous, digest)


class Kind(StrEnum):
    ALTERED = "altered"
    MISSING = "missing"
    DUPLICATE = "duplicate"
    FOREIGN = "foreign"


@dataclass(frozen=True)
class Break:
    """What is wrong at entry ``seq``, in one line."""

    seq: int
    kind: Kind
    what: str


@dataclass(frozen=True)
class Verdict:
    """The chain walked: how many entries, its head, what is broken (first first), older entries without hash."""

    entries: int
    head_seq: int
    head_sha256: str
    breaks: list[Break] = field(default_factory=list)
    before_chain: int = 0  # entries written before the log was chained: they carry no hash

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first(self) -> Break | None:
        return self.breaks[0] if self.breaks else None

    def summary(self) -> str:
        """One line: intact with its head, or the first break and how many there are."""
        older = (
            f"; the chain starts after {self.before_chain} older entries, which carry no hash"
            if self.before_chain
            else ""
        )
        if self.first is None:
            return f"intact: {self.entries} entries, head {self.head_seq} sha256 {self.head_sha256}{older}"
        more = f" (and {len(self.breaks) - 1} more breaks)" if len(self.breaks) > 1 else ""
        where = f" at entry {self.first.seq}" if self.first.seq else ""
        return f"BROKEN{where}: {self.first.what}{more}{older}"

    def checks(self) -> Mapping[int, str]:
        """Per entry number, what is wrong there (an export's column); a number not in it is fine."""
        found: dict[int, list[str]] = {}
        for problem in self.breaks:
            found.setdefault(problem.seq, []).append(problem.what)
        return {seq: "; ".join(said) for seq, said in found.items()}


def verify(
    entries: Iterable[ChainEntry], head_hint: int = 0, before_chain: int = 0, foreign: Iterable[str] = ()
) -> Verdict:
    """Walk ``entries`` in sequence order (any order given) and name every break, the first first.

    ``head_hint`` is the highest number the log ever recorded as written: entries
    missing at the end show only against it. ``foreign`` names documents among
    the entries that cannot be one (no number): each is a break, named before the rest.
    """
    walked = sorted(entries, key=lambda entry: entry.seq)
    breaks = [
        Break(0, Kind.FOREIGN, f"a document that is no entry is in the log: {name}") for name in foreign
    ]
    expected, previous = 1, GENESIS
    last: ChainEntry | None = None
    for entry in walked:
        if last is not None and entry.seq == last.seq:
            breaks.append(Break(entry.seq, Kind.DUPLICATE, f"entry {entry.seq} appears more than once"))
            continue
        gap = entry.seq > expected
        if gap:
            reason = (
                f"entry {entry.seq} follows entry {expected - 1}"
                if expected > 1
                else f"entry {entry.seq} is the first"
            )
            breaks.append(Break(expected, Kind.MISSING, _gap(expected, entry.seq - 1, reason)))
        if entry.computed() != entry.sha256:
            breaks.append(Break(entry.seq, Kind.ALTERED, f"entry {entry.seq} was altered: {_said(entry)}"))
        elif not gap and entry.previous != previous and not _named(breaks, last):
            breaks.append(_link_broken(entry, last))
        expected, previous, last = entry.seq + 1, entry.sha256, entry
    if head_hint >= expected:
        reason = f"the log's head is at {head_hint}, its last entry is {expected - 1}"
        breaks.append(Break(expected, Kind.MISSING, _gap(expected, head_hint, reason)))
    breaks.sort(key=lambda problem: problem.seq)
    return Verdict(
        entries=len(walked),
        head_seq=last.seq if last else 0,
        head_sha256=last.sha256 if last else GENESIS,
        breaks=breaks,
        before_chain=before_chain,
    )


def _gap(first: int, last: int, reason: str) -> str:
    which = f"entry {first} is" if first == last else f"entries {first} to {last} are"
    return f"{which} missing ({reason})"


def _named(breaks: list[Break], entry: ChainEntry | None) -> bool:
    """Whether ``entry`` is named altered already (its link onward then breaks too: one break says it)."""
    return entry is not None and any(b.seq == entry.seq and b.kind is Kind.ALTERED for b in breaks)


def _link_broken(entry: ChainEntry, last: ChainEntry | None) -> Break:
    """``entry`` is intact but links elsewhere: its link is covered by its own hash, so what changed is before it."""
    if last is None:
        return Break(entry.seq, Kind.ALTERED, f"entry 1 does not link to the genesis value: {_said(entry)}")
    what = f"entry {last.seq} was altered and its hash rewritten (entry {entry.seq} links to another hash)"
    return Break(last.seq, Kind.ALTERED, f"{what}: {_said(last)}")


def _said(entry: ChainEntry) -> str:
    """What an entry says now, shortly: enough for a person to find it."""
    return f"{time_text(entry.at)} {entry.person}: {entry.action} on {entry.target}"


# -- the export for auditors -------------------------------------------------------------------

COLUMNS: Final = (
    "seq",
    "time",
    "who",
    "role",
    "action",
    "target",
    "details",
    "previous_sha256",
    "sha256",
    "check",
)
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula (OWASP)


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: one that would start a formula gets a leading quote."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def export_rows(entries: Iterable[ChainEntry], verdict: Verdict) -> list[dict[str, str | int]]:
    """One row per entry in sequence order, each with what the verifier says of it, and one per missing number."""
    checks = dict(verdict.checks())
    rows: list[tuple[int, dict[str, str | int]]] = []
    for entry in entries:
        row: dict[str, str | int] = {
            "seq": entry.seq,
            "time": time_text(entry.at),
            "who": entry.person,
            "role": entry.role,
            "action": entry.action,
            "target": entry.target,
            "details": entry.details,
            "previous_sha256": entry.previous,
            "sha256": entry.sha256,
            "check": checks.pop(entry.seq, "ok"),
        }
        rows.append((entry.seq, row))
    for seq, what in checks.items():  # numbers no entry holds: missing ones
        missing: dict[str, str | int] = {name: "" for name in COLUMNS}
        rows.append((seq, {**missing, "seq": seq, "check": what}))
    rows.sort(key=lambda pair: pair[0])
    return [row for _seq, row in rows]


def verdict_json(verdict: Verdict) -> dict[str, object]:
    return {
        "intact": verdict.ok,
        "summary": verdict.summary(),
        "entries": verdict.entries,
        "head_seq": verdict.head_seq,
        "head_sha256": verdict.head_sha256,
        "before_chain": verdict.before_chain,
        "genesis": GENESIS,
        "breaks": [{"seq": b.seq, "kind": b.kind.value, "what": b.what} for b in verdict.breaks],
    }


def export_csv(entries: Iterable[ChainEntry], verdict: Verdict) -> str:
    """The log as CSV (RFC 4180), every text cell formula-safe, the verifier's verdict as the last row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in export_rows(entries, verdict):
        writer.writerow(safe_cell(str(row[name])) for name in COLUMNS)
    last = {name: "" for name in COLUMNS} | {"action": "chain verification", "check": verdict.summary()}
    writer.writerow(safe_cell(last[name]) for name in COLUMNS)
    return out.getvalue()


def export_json(entries: Iterable[ChainEntry], verdict: Verdict, exported_at: dt.datetime) -> str:
    """The log as JSON: the verifier's verdict, then every entry with its chain fields and check."""
    document = {
        "exported_at": time_text(exported_at),
        "verification": verdict_json(verdict),
        "entries": export_rows(entries, verdict),
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


def verdict_header(verdict: Verdict) -> str:
    """The verdict in an HTTP header's characters (ASCII): a download says it before it is opened."""
    state = (
        "intact" if verdict.first is None else f"broken at entry {verdict.first.seq} ({verdict.first.kind})"
    )
    return f"{state}; entries {verdict.entries}; head {verdict.head_seq} sha256 {verdict.head_sha256}"
