"""Validation's subscriptions: which topic goes to which of ``Validation``'s handlers, and how."""

from __future__ import annotations

from typing import Any

from services.validation.handlers import Validation
from shared import topics
from shared.contracts import Approval
from shared.contracts.events import AcceptedRecord, Review, ValidatedRecord
from shared.contracts.masterdata import MasterDataChange
from shared.contracts.policies import PolicyChange
from shared.stage import HeldPartitions, Stage


def register(stage: Stage[Any], validation: Validation, held: HeldPartitions | None = None) -> None:
    stage.publisher(topics.VALIDATED, ValidatedRecord)
    # A batch's new VINs are decided and saved in one request first; on_accepted announces those.
    # ``held``: the partitions this instance holds, told to the handlers (the records it decides again).
    stage.consume(
        topics.ACCEPTED, AcceptedRecord, validation.on_accepted, prepare=validation.prepare, held=held
    )
    stage.consume(topics.REVIEWS, Review, validation.on_review)
    # Every instance keeps the whole approval table: the topic is read whole by each.
    # Each approval of a batch kept first, then their waiting records decided again in one read:
    # those on the partitions of coc.records.accepted.v1 this instance holds (``Validation.take_over``).
    stage.consume(
        topics.APPROVALS,
        Approval,
        validation.take_approval,
        broadcast=True,
        broken_state=None,
        settle=validation.settle_approvals,
    )
    # Every instance keeps the whole policy table too; the topic is keyed by group, not by VIN.
    stage.consume(topics.POLICIES, PolicyChange, validation.on_policy, broadcast=True, broken_state=None)
    # And the plants and groups the compliance lead keeps (keyed by kind:name).
    stage.consume(
        topics.MASTERDATA, MasterDataChange, validation.on_master_data, broadcast=True, broken_state=None
    )
