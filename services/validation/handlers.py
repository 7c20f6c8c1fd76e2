"""Validation's application service: accepted records, reviews, approvals and policy changes in; decisions out.

The decisions are pure (``decide``); ``Validation`` reads what they need and
keeps what they make through its ports (``ports``), and carries each one out:
saved first, then announced (the validated record, if any, and the status
event). ``subscribers`` hands its methods to the stage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from functools import partial

from services.validation.decide import (
    WAITING,
    NotWaiting,
    Outcome,
    Pending,
    When,
    decide,
    names_unknown,
    redecide,
    rejected_by_review,
    reviewed_build,
)
from services.validation.ports import (
    Approvals,
    Clock,
    Emitter,
    NewDecision,
    Ownership,
    PendingRecords,
    Placements,
    Policies,
)
from services.validation.revisions import Read, fingerprint, judged
from services.validation.rules import Placement
from shared import topics
from shared.contracts import Approval, BuildRecord
from shared.contracts.approvals import RecordType, same_master_data
from shared.contracts.events import AcceptedRecord, Decision, Review, Settlement, State
from shared.contracts.masterdata import MasterDataChange
from shared.contracts.policies import PolicyChange
from shared.stage import Backoff, Unusable


def rejected(waiting: Pending) -> bool:
    """Whether a reviewer rejected the record (it stays blocked until a correction comes)."""
    return waiting.state is State.BLOCKED and waiting.reviewed_by is not None


class FirstDecisions:
    """The decisions ``Validation.prepare`` took and saved for one batch's first records, by record id.

    ``on_accepted`` announces such a decision instead of taking it again. It is
    given out once, and only while nothing that may change it has come since it
    was taken (``generation``: an approval, a policy change, a review); after
    that, and for any record not here, the record is decided as if ``prepare``
    had never run. Each batch's decisions replace the previous batch's, so none
    outlives its batch: a batch that failed comes again and is prepared again.
    """

    def __init__(self, outcomes: Mapping[str, Outcome] | None = None, generation: int = 0) -> None:
        self._outcomes = dict(outcomes or {})
        self.generation = generation

    def take(self, record_id: str, generation: int) -> Outcome | None:
        """The decision saved for ``record_id``, unless something came since (``generation`` moved on)."""
        if generation != self.generation:
            return None
        return self._outcomes.pop(record_id, None)


class Validation:
    """Decides on each record with the approvals and policies known, and redecides when they change.

    Dates are compared in the plant's calendar (``plant_zone``): see ``decide.When``.
    """

    def __init__(
        self,
        *,
        approvals: Approvals,
        pending: PendingRecords,
        policies: Policies,
        emitter: Emitter,
        clock: Clock,
        plant_zone: dt.tzinfo,
        backoff: Backoff,
        placements: Placements | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        """``placements``: where revisions put their VIN (the service always has it; without it, as in
        tests of other handlers, no move between groups or plants is looked for). ``ownership``: the
        VINs this instance decides again when a table changes (None: every VIN, as one instance)."""
        self.approvals, self.pending, self.policies = approvals, pending, policies
        self.emitter, self.clock, self.plant_zone, self.backoff = emitter, clock, plant_zone, backoff
        self.placements, self.ownership = placements, ownership
        self.firsts = FirstDecisions()
        self._generation = 0  # moves on with each approval, policy change or review taken
        self._unsettled: set[str] = set()  # approvals kept whose waiting records are yet to be decided again

    def when(self) -> When:
        return When.at_plant(self.clock.now(), self.plant_zone)

    # --- accepted records ----------------------------------------------------------------------

    async def prepare(self, firsts: Sequence[tuple[AcceptedRecord, str | None]]) -> FirstDecisions:
        """Decide each new VIN's first record of a batch and save those decisions in one request.

        A VIN the store knows already is refused there and left to ``on_accepted``
        (its revision compared with the newest known); so is a record whose
        approval is not known yet (``_apply`` decides it again if it arrives).
        A later revision (2 and above) is not offered at all: its VIN is known
        nearly always (a re-issue's batch is all of them), and deciding it here and
        sending its whole document to be refused is work for nothing;
        ``on_accepted`` saves it after one read.
        """
        self.firsts = FirstDecisions()
        generation, when, policy = self._generation, self.when(), self.policies.policy
        decided: dict[str, tuple[BuildRecord, Outcome, Approval]] = {}
        offered = [record for record, _trace in firsts if record.build.revision == 1]
        contents = {record.build.record_id: fingerprint(record) for record in offered}
        for build in (record.build for record in offered):
            approval = self.approvals.get(build.approval.key)
            if approval is not None:
                decided[build.vin] = (build, decide(build, self.approvals, policy, when), approval)
        new: list[NewDecision] = [
            (build, outcome.state, outcome.state in WAITING, approval)
            for build, outcome, approval in decided.values()
        ]
        saved = await self.pending.save_new(new, contents)
        outcomes = {build.record_id: outcome for vin, (build, outcome, _a) in decided.items() if vin in saved}
        self.firsts = FirstDecisions(outcomes, generation)
        return self.firsts

    async def on_accepted(self, record: AcceptedRecord) -> None:
        """Decide on an accepted record and carry the decision out; a superseded revision is dropped.

        A record id received before with other content is refused (``revisions.judged``):
        blocked with ``REVISION_REUSED`` on the status topic, nothing kept, nothing sent on.
        """
        outcome = self.firsts.take(record.build.record_id, self._generation)
        if outcome is not None:
            await self._announce(record.build, outcome, None)  # decided and saved with its batch
            return
        content = fingerprint(record)
        kept = await self.pending.kept(record.build.vin)  # the VIN's one read: compared, placed, saved after
        build = judged(record.build, content, kept)
        if isinstance(build, BuildRecord):
            await self._apply(build, fingerprint=content, read=Read(kept))
            return
        await self.emitter.status(
            vin=record.build.vin,
            revision=record.build.revision,
            state=State.BLOCKED,
            findings=(build,),  # no build: the record keeps the group and build id of the one kept
            reason=build.message,  # the record's timeline shows it beside the state
        )

    # --- what changes decisions ----------------------------------------------------------------

    async def on_review(self, review: Review) -> None:
        """A reviewer's acceptance releases a waiting record (never past an error); a rejection blocks it."""
        try:
            build = reviewed_build(await self.pending.get(review.vin), review)
        except NotWaiting as exc:
            raise Unusable(str(exc), state=None) from None
        self._generation += 1
        if review.decision is Decision.ACCEPT:
            settlement = Settlement(reviewer=review.reviewer, comment=review.comment, at=self.when().at)
            await self._apply(build, reviewed_by=review.reviewer, settlement=settlement)
            return
        finding = rejected_by_review(review.reviewer, review.comment)
        await self.pending.save(build, State.BLOCKED, True, review.reviewer)
        await self.emitter.status(
            vin=build.vin,
            revision=build.revision,
            state=State.BLOCKED,
            build=build,
            findings=(finding,),
            record_type=self._record_type(build),
        )

    async def on_approval(self, approval: Approval) -> None:
        """Keep a new or changed approval and decide again the records waiting on it."""
        await self.take_approval(approval)
        await self.settle_approvals()

    async def take_approval(self, approval: Approval) -> None:
        """Keep a new or changed approval; ``settle_approvals`` decides its waiting records again.

        The subscription hands each approval of a batch here, then settles once
        after the batch: approvals published together (an upload of 500) cost
        one read of the waiting records, not one each.
        """
        if same_master_data(self.approvals.get(approval.key), approval):
            return  # already known (read at start, a repeat, or the same data published again by another)
        self.approvals.add(approval)
        self._generation += 1
        self._unsettled.add(approval.key)

    async def settle_approvals(self) -> None:
        """Decide again the records waiting on the approvals kept since the last settle, in one read.

        A key leaves the list only once its records are decided: after a fault
        the batch comes again, its approvals are known by then and noted no
        more, and this settle takes the keys still listed.
        """
        keys = sorted(self._unsettled)
        if not keys:
            return
        found = await self.pending.waiting_on_any(keys)
        for key in keys:
            for waiting in found.get(key, []):
                # Another instance's, or rejected by a reviewer: a rejection stands until a correction
                # comes as a new revision, whatever the approval now says.
                if self._mine(waiting.build.vin) and not rejected(waiting):
                    await self._apply(waiting.build, waiting.reviewed_by, waiting.settlement)
            self._unsettled.discard(key)

    async def on_policy(self, change: PolicyChange) -> None:
        """Take a group's policy change and decide its held and needs-review records again.

        Blocked and released records keep their decision (``decide.redecide``).
        """
        if not self.policies.apply(change):
            return  # an older change read again, or one already carried out
        # From here every step is retried in place: delivered again, the change would be "already
        # carried out" above, and its group's records would stay held.
        self._generation += 1
        for waiting in await self.backoff.retry(partial(self.pending.waiting_in, change.vehicle_group)):
            if not self._mine(waiting.build.vin):
                continue
            moved = await self.backoff.retry(partial(self._moved_from, waiting.build))
            outcome = redecide(waiting, self.approvals, self.policies.policy, self.when(), moved)
            if outcome is not None:
                step = partial(
                    self._carry_out, waiting.build, outcome, waiting.reviewed_by, waiting.settlement
                )
                await self.backoff.retry(step)

    async def on_master_data(self, change: MasterDataChange) -> None:
        """A plant or vehicle group made known or withdrawn: the waiting records naming it are decided again.

        So a record blocked on an unknown group moves on once the compliance lead
        adds the group, without anyone resending it; a name withdrawn blocks its
        held and needs-review records too. A record a reviewer rejected stays
        rejected. Retried in place, as ``on_policy``.
        """
        if not self.policies.learn(change) or self.placements is None:
            return  # an older change read again, or one already carried out
        self._generation += 1
        for waiting in await self.backoff.retry(
            partial(self.placements.waiting_named, change.kind, change.name)
        ):
            if not self._mine(waiting.build.vin) or rejected(waiting):
                continue  # another instance's, or rejected by a reviewer: a correction comes as a new revision
            if change.known and waiting.state is not State.BLOCKED:
                continue  # a name added unblocks; a held or reviewed record stays as it is
            await self.backoff.retry(
                partial(self._apply, waiting.build, waiting.reviewed_by, waiting.settlement)
            )

    # --- which records are this instance's ---------------------------------------------------------

    def _mine(self, vin: str) -> bool:
        """Whether this instance decides the VIN's waiting record again when a table changes.

        The one holding the VIN's partition of coc.records.accepted.v1: with two instances
        each record is decided once, not by both (``take_over`` does it for the
        partitions an instance comes to hold).
        """
        return self.ownership is None or self.ownership.holds(vin)

    async def take_over(self, partitions: frozenset[int]) -> None:
        """Partitions of coc.records.accepted.v1 newly held: their waiting records decided again, in one read.

        Called once the tables are read to their end (``HeldPartitions``): an
        approval, policy or master-data change that came while no instance held
        a partition, or before this one started, is carried out for its records
        now. Only a decision that changes a record's state is carried out (a
        record still blocked, held or waiting for review says nothing again); a
        record a reviewer rejected stays rejected. Retried in place: the
        assignment is not made again.
        """
        ownership = self.ownership
        for waiting in await self.backoff.retry(self.pending.waiting):
            if ownership is None or ownership.among(waiting.build.vin, partitions):
                await self.backoff.retry(partial(self._decide_again, waiting))

    async def _decide_again(self, waiting: Pending) -> None:
        """A waiting record against the tables as they are; carried out if its state changes."""
        if rejected(waiting):
            return
        build, by, settlement = waiting.build, waiting.reviewed_by, waiting.settlement
        policy = self.policies.policy
        outcome = decide(build, self.approvals, policy, self.when(), by, settlement)
        if outcome.state is not State.BLOCKED:  # a move of group or plant adds a warning, never an error
            moved = await self._moved_from(build)
            outcome = decide(build, self.approvals, policy, self.when(), by, settlement, moved)
        if outcome.state is not waiting.state:
            await self._carry_out(build, outcome, by, settlement)

    # --- carrying decisions out ----------------------------------------------------------------

    async def _moved_from(self, build: BuildRecord, read: Read | None = None) -> Placement | None:
        return None if self.placements is None else await self.placements.moved_from(build, read)

    async def _apply(
        self,
        build: BuildRecord,
        reviewed_by: str | None = None,
        settlement: Settlement | None = None,
        fingerprint: str | None = None,
        read: Read | None = None,
    ) -> None:
        """Decide on a record with the current approvals and policies, and carry the decision out.

        A record decided without its approval, whose approval arrived while the
        decision was being saved, is decided again: the approval's re-check of
        the records waiting on it (``on_approval``) may have read the pending
        records just before this one was written. ``fingerprint``: the content
        received, for a build that came from intake. Likewise a record blocked on
        an unknown plant or group when the master data changed meanwhile. ``read``:
        the VIN's pending document as ``on_accepted`` just read it, so that the
        placement and the save compare with it instead of reading it again (a
        decision taken again reads afresh).
        """
        known = self.approvals.get(build.approval.key) is not None
        policy, moved = self.policies.policy, await self._moved_from(build, read)
        outcome = decide(build, self.approvals, policy, self.when(), reviewed_by, settlement, moved)
        await self._carry_out(build, outcome, reviewed_by, settlement, fingerprint, read)
        changed = names_unknown(outcome) and self.policies.policy is not policy
        if changed or (not known and self.approvals.get(build.approval.key) is not None):
            await self._apply(build, reviewed_by, settlement, fingerprint)

    async def _carry_out(
        self,
        build: BuildRecord,
        outcome: Outcome,
        reviewed_by: str | None,
        settlement: Settlement | None = None,
        fingerprint: str | None = None,
        read: Read | None = None,
    ) -> None:
        """Save a decision and announce it; nothing when a newer revision of the VIN is known."""
        approval = outcome.validated.approval if outcome.validated else self.approvals.get(build.approval.key)
        waiting = outcome.state in WAITING
        saved = await self.pending.save(
            build, outcome.state, waiting, reviewed_by, approval, settlement, fingerprint, read
        )
        if saved:
            await self._announce(build, outcome, reviewed_by)

    async def _announce(self, build: BuildRecord, outcome: Outcome, reviewed_by: str | None) -> None:
        """Publish a saved decision: the validated record, if any, and the status event."""
        if outcome.validated is not None:
            await self.emitter.send(
                topics.VALIDATED, outcome.validated, key=build.vin, correlation_id=build.record_id
            )
        await self.emitter.status(
            vin=build.vin,
            revision=build.revision,
            state=outcome.state,
            build=build,
            findings=outcome.findings,
            reason=f"released by {reviewed_by}" if reviewed_by and outcome.validated else None,
            record_type=self._record_type(build),
        )

    def _record_type(self, build: BuildRecord) -> RecordType | None:
        """The record type of the build, from its approval (None while the approval is unknown)."""
        approval = self.approvals.get(build.approval.key)
        return approval.record_type if approval is not None else None
