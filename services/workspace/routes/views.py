"""What each page shows, as typed view models, and the pure steps that make them from the pipeline's answers.

No web framework here: a room reads, builds its page's view model with these
functions and hands it to ``answers.render``. The status and validation APIs'
answers stay the mappings they are (their contracts are those services'), the
workspace's own rows are dataclasses. A page's model names its template.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from services.workspace import words
from services.workspace.adapters.pipeline import Certificate
from services.workspace.approvals import Change
from services.workspace.destinations import Destination
from services.workspace.evidence import CertificateCheck, Section
from services.workspace.identity import AuditEntry, Session
from services.workspace.multistage import StageView
from services.workspace.record_types import RecordTypeRow
from shared.codes import meaning
from shared.contracts import Approval
from shared.contracts.events import DELIVERY_STAGE, DELIVERY_STATES, State
from shared.contracts.policies import PolicyChange
from shared.findings import next_step

Json = Mapping[str, Any]  # an answer of another service's API, as it came
STATES = [s.value for s in State if s not in DELIVERY_STATES]  # delivery is shown beside archived
# The certificates' deliveries to the authorities, as the board counts them (in the order they go).
DELIVERIES = [
    (State.DELIVERY_QUEUED.value, "Waiting to be sent"),
    (State.SUBMITTED.value, "Sent, awaiting the authority"),
    (State.DELIVERY_RETRYING.value, "Sent again after a fault"),
    (State.DELIVERED.value, "Delivered"),
    (State.DELIVERY_REJECTED.value, "Rejected by the authority"),
]


# -- the board ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCounts:
    name: str
    counts: dict[str, int]


@dataclass(frozen=True)
class Board:
    """The board's numbers: per group a count per state, totals per state, and the extras.

    The same numbers go to open boards as live updates (``as_json``), which the page's script reads.
    """

    states: list[str]
    groups: list[GroupCounts]
    totals: dict[str, int]
    total: int
    archived_last_hour: int | None  # None: not known, the page shows a dash rather than a zero
    archived_last_day: int | None
    open_findings_by_owner: dict[str, int]
    deliveries: dict[str, int]
    as_of: str | None
    events_behind: int
    as_of_text: str = words.NO_TIME  # as_of as a person reads it in the plant's zone (live updates show it)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def board_view(readiness: Json, zone: dt.tzinfo = words.DEFAULT_ZONE) -> Board:
    by_group: Mapping[str, Mapping[str, int]] = readiness.get("by_group", {})
    return Board(
        states=STATES,
        groups=[GroupCounts(g, {s: int(by_group[g].get(s, 0)) for s in STATES}) for g in sorted(by_group)],
        totals={s: int(readiness.get("by_state", {}).get(s, 0)) for s in STATES},
        total=int(readiness.get("total", 0)),
        archived_last_hour=readiness.get("archived_last_hour"),
        archived_last_day=readiness.get("archived_last_day"),
        open_findings_by_owner=dict(readiness.get("open_findings_by_owner", {})),
        deliveries={
            state: int(readiness.get("delivery_by_state", {}).get(state, 0)) for state, _ in DELIVERIES
        },
        as_of=readiness.get("as_of"),
        events_behind=int(readiness.get("events_behind") or 0),
        as_of_text=words.when(readiness.get("as_of"), zone),
    )


# -- the pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInPage:
    template: ClassVar[str] = "signin.html"
    next: str
    csrf: str
    name: str = ""
    error: str | None = None
    company: str | None = None  # the company sign-in's name, when it is set up


@dataclass(frozen=True)
class SessionsPage:
    """A person's own live sessions; ``current`` is the key of the one this page was asked in."""

    template: ClassVar[str] = "sessions.html"
    sessions: list[Session]
    current: str
    idle: str  # "30 minutes"
    lifetime: str  # "10 hours"


@dataclass(frozen=True)
class BoardPage:
    template: ClassVar[str] = "board.html"
    board: Board
    problem: str | None
    deliveries: list[tuple[str, str]] = field(default_factory=lambda: DELIVERIES)
    destinations: Sequence[Destination] = ()  # readiness by destination (``destinations``)
    record_types: Sequence[RecordTypeRow] = ()  # readiness by record type (``record_types``)


@dataclass(frozen=True)
class FilterForm:
    """A list's filters as its form shows them (an unset age or date is an empty box)."""

    group: str
    code: str
    min_age_h: float | str
    record_type: str = ""
    country: str = ""
    archived_from: str = ""  # the archived list's dates (YYYY-MM-DD)
    archived_to: str = ""

    @property
    def any_set(self) -> bool:
        return any(str(value) for value in asdict(self).values())


# The record types a list filters by (the approval's StageOfCompletion), as a person reads them.
RECORD_TYPES = {"C": "Complete vehicle (C)", "I": "Incomplete vehicle (I)", "V": "Completed vehicle (V)"}


@dataclass(frozen=True)
class Choices:
    """The values a list's filters can take, from status's facets; without them a filter is a text box."""

    groups: list[tuple[str, str]]  # (value, what the choice says)
    codes: list[tuple[str, str]]
    countries: list[tuple[str, str]]
    record_types: list[tuple[str, str]] = field(default_factory=lambda: list(RECORD_TYPES.items()))


FACETS_MAX = 500  # choices per filter a page offers


def choices_of(facets: Json) -> Choices | None:
    """The filter choices of status's ``GET /v1/facets`` answer; None when it gave none (an older status)."""
    if not facets or not any(facets.get(k) for k in ("groups", "codes", "countries")):
        return None

    def values(key: str) -> list[str]:
        return sorted({str(v)[:64] for v in facets.get(key) or [] if v not in (None, "")})[:FACETS_MAX]

    types = [(t, RECORD_TYPES.get(t, t)) for t in values("record_types")] or list(RECORD_TYPES.items())
    return Choices(
        groups=[(g, g) for g in values("groups")],
        codes=[(c, c) for c in values("codes")],
        countries=[(c, country_text(c)) for c in values("countries")],
        record_types=types,
    )


def country_text(code: str) -> str:
    """A destination as a filter offers it: "D — Germany" (the Vienna sign's meaning), "none stated"."""
    if code == "none":
        return "none stated"
    name = meaning("vienna_country", code)
    return f"{code} — {name}" if name else code


def explained(item: Json) -> dict[str, Any]:
    """A list item whose findings each carry their next step and who to ask (``shared.findings``)."""
    findings = [
        {**f, "next_step": step.what_to_do, "who_to_ask": step.who_to_ask}
        for f in item.get("findings") or []
        for step in [next_step(str(f.get("code", "")), f.get("owner"))]
    ]
    country = item.get("country")
    named = meaning("vienna_country", str(country)) if country else None
    return {**item, "findings": findings, "country_name": named}


@dataclass(frozen=True)
class ListPage:
    """A worklist (``team``) or the records in one state (``state``): one page of it."""

    template: ClassVar[str] = "worklist.html"
    team: str | None
    state: str | None
    action: str  # the list's own address, where its filter form goes
    items: Sequence[Json]
    total: int
    page_no: int
    pages: int
    filters: FilterForm
    problem: str | None
    now: dt.datetime
    choices: Choices | None = None  # None: the filters are text boxes (status gave no facets)
    query: str = ""  # the filters as a query string, for the pager and the exports
    export_max: int = 100_000  # lines an export holds at most


@dataclass(frozen=True)
class TimelineRow:
    """A status event of the record, or a person's action on it."""

    kind: str  # "event" or "action"
    time: str
    revision: int | None
    stage: str
    state: str
    service: str
    reason: str | None
    trace_id: str | None


@dataclass(frozen=True)
class RevisionRow:
    revision: int
    state: str  # the last state the revision reached
    time: str
    delivery: str | None  # its certificate's delivery, beside it


@dataclass(frozen=True)
class SettledFinding:
    """A finding an earlier event carried that the record no longer has."""

    code: str
    path: str
    owner: str
    message: str
    revision: int
    last_seen: str


@dataclass(frozen=True)
class RecordPage:
    template: ClassVar[str] = "record.html"
    vin: str
    record: Json | None
    problems: list[str]
    reviewable: bool  # waits for a person's review of this revision (the page offers it to a reviewer)
    timeline: list[TimelineRow]
    revisions: list[RevisionRow]
    settled: list[SettledFinding]
    received: Json | None  # the build as validation received it, and its decision
    approval: Approval | None
    certificate: Certificate | None
    check: CertificateCheck | None
    sections: list[Section] | None
    done: str | None  # the decision just sent, said once
    stage: StageView | None = None  # record type and previous stage (services.workspace.multistage)


def awaits_review(record: Json | None) -> bool:
    """Whether the record waits for a reviewer (``needs_review``), as validation accepts only then.

    A blocked record has an error no person can settle: it waits for a
    correction or an approval. A held one waits for its group's release on the rollout page.
    """
    return bool(record and record["state"] == State.NEEDS_REVIEW.value)


@dataclass(frozen=True)
class ApprovalsPage:
    template: ClassVar[str] = "approvals.html"
    approvals: list[Approval]
    counts: dict[str, int]  # versions seen per approval key


@dataclass(frozen=True)
class ApprovalPage:
    template: ClassVar[str] = "approval.html"
    approval: Approval
    history: list[Change]
    rows: list[tuple[str, Any]]  # the certificate data as (dotted path, value)
    waiting: Sequence[Json]
    problem: str | None
    reissue: Any = None  # the re-issue block (routes.reissue.Offer): certificates it would correct


@dataclass(frozen=True)
class SettingsPolicy:
    """The release policy validation's settings give a group no policy change names, and that setting's name."""

    policy: str
    setting: str  # COC_RELEASE_POLICY (the group's own) or COC_DEFAULT_RELEASE_POLICY (every other group)


def settings_policy(defaults: Json, group: str | None = None) -> SettingsPolicy | None:
    """From validation's /v1/policy-defaults: the group's own policy in the settings, else the default one."""
    by_group = defaults.get("by_group") or {}
    if group is not None and group in by_group:
        return SettingsPolicy(
            str(by_group[group]), str(defaults.get("by_group_setting") or "COC_RELEASE_POLICY")
        )
    if defaults.get("default"):
        return SettingsPolicy(
            str(defaults["default"]), str(defaults.get("default_setting") or "COC_DEFAULT_RELEASE_POLICY")
        )
    return None


@dataclass(frozen=True)
class RolloutRow:
    group: str
    change: PolicyChange | None  # None: the group follows validation's settings
    history: list[AuditEntry]
    known: bool = True  # in the master data (coc.masterdata.v1); an unknown group's builds are blocked
    settings: SettingsPolicy | None = None  # what validation's settings give it (None: not said)


@dataclass(frozen=True)
class RolloutPage:
    template: ClassVar[str] = "rollout.html"
    rows: list[RolloutRow]
    policies: list[str]
    problem: str | None
    done: str | None  # the group just changed, said once
    plants: list[str] = field(default_factory=list)  # the plants known (master data)
    added: str | None = None  # the plant or group just added to the master data, said once
    default: SettingsPolicy | None = None  # validation's default policy and its setting (None: not known)


Page = (
    SignInPage | SessionsPage | BoardPage | ListPage | RecordPage | ApprovalsPage | ApprovalPage | RolloutPage
)


# -- a record's history ------------------------------------------------------------------------


def timeline_of(record: Json | None, actions: Sequence[AuditEntry]) -> list[TimelineRow]:
    """The record's status events and the people's actions on it, newest first."""
    rows = [
        TimelineRow(
            kind="event",
            time=entry["time"],
            revision=entry.get("revision"),
            stage=entry.get("stage", ""),
            state=entry.get("state", ""),
            service=entry.get("service", ""),
            reason=entry.get("reason"),
            trace_id=entry.get("trace_id"),
        )
        for entry in (record or {}).get("timeline", [])
    ]
    rows += [
        TimelineRow(
            kind="action",
            time=action.at.isoformat(),
            revision=None,
            stage="workspace",
            state=action.action,
            service=action.person,
            reason=words.said(action),
            trace_id=None,
        )
        for action in actions
    ]
    return sorted(rows, key=lambda row: parse_time(row.time), reverse=True)


def revisions_of(record: Json | None) -> list[RevisionRow]:
    """Each revision the timeline holds, newest first, with the last state it reached and its delivery.

    Delivery events speak for the certificate's delivery, not for the revision's
    state: a delivered revision reached ``archived``, and its delivery is beside it.
    """
    last: dict[int, Json] = {}
    delivery: dict[int, Json] = {}
    for entry in (record or {}).get("timeline", []):
        revision = entry["revision"]
        kept = delivery if entry["stage"] == DELIVERY_STAGE else last
        if revision not in kept or parse_time(entry["time"]) >= parse_time(kept[revision]["time"]):
            kept[revision] = entry
    return [
        RevisionRow(
            revision=r,
            state=last[r]["state"],
            time=(delivery.get(r) or last[r])["time"],
            delivery=delivery[r]["state"] if r in delivery else None,
        )
        for r in sorted(last, reverse=True)
    ]


def settled_findings(record: Json | None) -> list[SettledFinding]:
    """Findings earlier events carried that the record no longer has, each with when it was last seen."""
    if not record:
        return []
    open_now = {(f["code"], f["path"]) for f in record.get("findings", [])}
    seen: dict[tuple[str, str], SettledFinding] = {}
    for entry in sorted(record.get("timeline", []), key=lambda e: parse_time(e["time"])):
        for finding in entry.get("findings", []):
            key = (finding["code"], finding["path"])
            if key not in open_now:
                seen[key] = SettledFinding(
                    code=finding["code"],
                    path=finding["path"],
                    owner=finding.get("owner", ""),
                    message=finding.get("message", ""),
                    revision=entry["revision"],
                    last_seen=entry["time"],
                )
    return sorted(seen.values(), key=lambda f: parse_time(f.last_seen), reverse=True)


# -- how times read ----------------------------------------------------------------------------


def age_text(seconds: float) -> str:
    """How long something has waited, as a person says it: "45 min", "3 h 20 min", "2 d 4 h"."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def age_since(time: object, at: dt.datetime) -> str:
    return age_text((at - parse_time(str(time))).total_seconds())


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
