"""Pydantic contracts: messages on the topics and the HTTP bodies."""

from shared.contracts.approvals import Approval, approval_key
from shared.contracts.builds import ApprovalRef, BuildRecord, FittedTyre
from shared.contracts.findings import Finding, Owner, Severity

__all__ = [
    "Approval",
    "ApprovalRef",
    "BuildRecord",
    "Finding",
    "FittedTyre",
    "Owner",
    "Severity",
    "approval_key",
]
