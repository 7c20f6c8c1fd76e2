"""What validation's handlers need from the world, as Protocols: app.py chooses what fills them.

The service runs them with the MongoDB pending store, the approval table read
from coc.approvals.v1, the policies read from coc.policies.v1, the stage's
emitter and the system clock; unit tests with small in-memory stand-ins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel

from services.validation.decide import Pending
from services.validation.policy import RulePolicy
from services.validation.revisions import Kept, Read
from services.validation.rules import KnownApprovals, Placement
from shared.contracts import Approval, BuildRecord, Finding
from shared.contracts.approvals import RecordType
from shared.contracts.events import Settlement, State
from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.contracts.policies import PolicyChange

# A decision on a VIN's first record: the build, its state, whether it waits, the approval it was checked with.
NewDecision = tuple[BuildRecord, State, bool, Approval | None]


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, time-zone aware."""
        ...


class PendingRecords(Protocol):
    """The newest revision of each VIN and the decision on it (``adapters.pending.PendingStore``)."""

    async def save(
        self,
        build: BuildRecord,
        state: State,
        waiting: bool,
        reviewed_by: str | None = None,
        approval: Approval | None = None,
        settlement: Settlement | None = None,
        fingerprint: str | None = None,
        read: Read | None = None,
    ) -> bool:
        """Keep a decision; False (nothing kept) when a newer revision of the VIN is known.

        ``fingerprint`` is the content received for the build's record id
        (``revisions.fingerprint``), kept beside the fingerprints of the VIN's
        other revisions; None leaves them as they are. ``read``: the VIN's
        document as the caller just read it, compared with instead of reading it again.
        """
        ...

    async def save_new(
        self, decisions: list[NewDecision], fingerprints: Mapping[str, str] | None = None
    ) -> set[str]:
        """Keep the decisions on VINs not known yet, in one request; the VINs kept.

        ``fingerprints``: the content of each build, by record id.
        """
        ...

    async def get(self, vin: str) -> Pending | None: ...

    async def kept(self, vin: str) -> Kept | None:
        """The VIN's newest build and the content fingerprint of each revision received (None: unknown VIN)."""
        ...

    async def waiting_on(self, approval_key: str) -> list[BuildRecord]:
        """The waiting records built to one approval version."""
        ...

    async def waiting_on_any(self, approval_keys: Sequence[str]) -> dict[str, list[Pending]]:
        """The waiting records built to any of these approval versions, with their state, by key (one read for all)."""
        ...

    async def waiting_in(self, vehicle_group: str) -> list[Pending]:
        """The waiting records of one vehicle group."""
        ...

    async def waiting(self) -> list[Pending]:
        """Every waiting record (one read)."""
        ...


class Ownership(Protocol):
    """The VINs whose records this instance decides again (``shared.runtime.partitions.HeldPartitions``).

    A VIN's records come on one partition of coc.records.accepted.v1; the instance
    whose consumer holds it decides them again when a table changes.
    """

    def holds(self, key: str) -> bool:
        """Whether the VIN's partition is held by this instance now."""
        ...

    def among(self, key: str, partitions: Collection[int]) -> bool:
        """Whether the VIN falls on one of ``partitions``."""
        ...


class Approvals(KnownApprovals, Protocol):
    """The approvals known, which the approvals topic adds to (``rules.ApprovalTable``)."""

    def add(self, approval: Approval) -> None: ...


class Policies(Protocol):
    """The rule policy in force and the changes that alter it (``policy.PolicyInForce``)."""

    @property
    def policy(self) -> RulePolicy: ...

    def apply(self, change: PolicyChange) -> bool:
        """Take a change; True when its group's waiting records must be decided again."""
        ...

    def learn(self, change: MasterDataChange) -> bool:
        """Take a plant or group change; True when the waiting records naming it must be decided again."""
        ...


class Emitter(Protocol):
    """Publishes onward as the stage (``shared.stage.Emitter``)."""

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None: ...

    async def status(
        self,
        *,
        vin: str,
        revision: int,
        state: State,
        build: BuildRecord | None = None,
        findings: Iterable[Finding] = (),
        reason: str | None = None,
        record_type: RecordType | None = None,
    ) -> object: ...


class Placements(Protocol):
    """Where each VIN's revisions put it, and the waiting records of a plant or group (``adapters.placements``)."""

    async def moved_from(self, build: BuildRecord, read: Read | None = None) -> Placement | None:
        """The previous revision's group and plant, where ``build`` changes them; kept for ``build``'s record id.

        ``read``: the VIN's pending document as the caller just read it (else it is read here).
        """
        ...

    async def waiting_named(self, kind: MasterKind, name: str) -> list[Pending]:
        """The waiting records whose vehicle group or plant (``kind``) is ``name``."""
        ...
