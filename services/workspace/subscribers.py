"""The workspace's subscribers: the status topic, live, for the open pages; the policy table."""

from __future__ import annotations

import datetime as dt

from services.workspace.approvals import ApprovalBook
from services.workspace.live import LiveFeed
from services.workspace.settings import WorkspaceSettings
from shared import topics
from shared.contracts import Approval
from shared.contracts.events import StatusEvent
from shared.contracts.masterdata import MasterDataChange
from shared.contracts.policies import PolicyChange
from shared.contracts.seals import SealRegistration
from shared.master_table import MasterTable
from shared.policy_table import PolicyTable
from shared.seal_table import SealTable
from shared.stage import Stage

BATCH = 500
# The board's live counts lag the status topic by at most this much; the broker then answers
# the feed a few times a second, not once for every event or two.
LIVE_GATHER_MS = 250


# Approvals reach the topic through intake's API, with the type-approval team's token.
PUBLISHER = "type-approval (intake API)"


def register(
    stage: Stage[WorkspaceSettings],
    feed: LiveFeed,
    policies: PolicyTable,
    approvals: ApprovalBook,
    master: MasterTable,
    seals: SealTable | None = None,
) -> None:
    async def on_status(events: list[StatusEvent]) -> None:
        feed.take(events)

    async def on_policy(change: PolicyChange) -> None:
        policies.add(change)

    async def on_master_data(change: MasterDataChange) -> None:
        master.add(change)

    async def on_approval(approval: Approval) -> None:
        approvals.add(approval, dt.datetime.now(dt.UTC), PUBLISHER)

    stage.consume_batches(
        topics.STATUS, StatusEvent, on_status, max_records=BATCH, live=True, gather_ms=LIVE_GATHER_MS
    )
    # Every instance keeps the whole table, as validation does.
    stage.consume(topics.POLICIES, PolicyChange, on_policy, broadcast=True, broken_state=None)
    stage.consume(topics.APPROVALS, Approval, on_approval, broadcast=True, broken_state=None)
    stage.consume(topics.MASTERDATA, MasterDataChange, on_master_data, broadcast=True, broken_state=None)
    if seals is not None:

        async def on_seal(registration: SealRegistration) -> None:
            seals.add(registration)

        stage.consume(topics.SEALS, SealRegistration, on_seal, broadcast=True, broken_state=None)
