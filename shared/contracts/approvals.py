"""Approval master data: what the type-approval team maintains per type, variant and version.

The certificate data is a tree keyed by IVI 2.0 element names, shaped the way a
schema-aware decoder reads a document: a complex element is a mapping, a
repeated element a list, a leaf its lexical value as a string. It holds every
``CocDataGroup`` element the approved version fixes, for any vehicle category,
and none of the per-vehicle ones (VIN, date of manufacture, colour, actual mass,
fitted tyre indicator, signature date): those come from the build record.
Which names exist and which are per vehicle is decided by the official schema
(``shared.ivi``), not by this model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from shared.contracts.base import Contract, PersonName, Text

# Type-approval number: e<member state>*<act>*<base number>*<extension>, e.g. e6*2018/858*00294*01
# (domain.md, "Type-approval number"; Regulation (EU) 2020/683 Annex I).
APPROVAL_NUMBER = re.compile(r"^e\d{1,2}\*[0-9/]+\*\d{4,5}\*\d{2}$")

CertificateTree = dict[str, Any]
# StageOfCompletionCode of IVI 2.0: complete, incomplete, completed (a later stage of a multistage vehicle).
RecordType = Literal["C", "I", "V"]
RECORD_TYPES: tuple[RecordType, ...] = ("C", "I", "V")
# The certificate data of one version: the official M1 specimen's is about 9 KB as JSON. A tree
# far larger is not master data but a mistake, and would make a certificate too large to send.
CERTIFICATE_MAX_BYTES = 400_000
CERTIFICATE_MAX_DEPTH = 20


class ApprovalSource(Contract):
    """Who brought a version of approval master data in, and how: provenance, not master data.

    Kept beside the data and shown on the approval's history; ignored by
    ``master_data_sha256`` and by every "is this a change" (``same_master_data``),
    so the same values published again by someone else change nothing.
    """

    by: PersonName = Field(
        min_length=1, max_length=200, description="The person's name, or the token's name for the machine API"
    )
    via: Literal["workspace", "intake API"] = Field(description="Where it was published")
    at: AwareDatetime = Field(description="When it was published")
    comment: Text = Field("", max_length=2000, description="What the person said about the change")


class Approval(Contract):
    """One approved version of a type, with the certificate values it fixes."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    number: str = Field(description="Type-approval number, e.g. e6*2018/858*00294*01")
    issue_date: dt.date = Field(description="Issue date of the current extension (IVI TypeApprovalIssueDate)")
    designated_country: Text = Field(
        description="Approval authority country code as in IVI, e.g. e6 (DesignatedTypeApprovalCountry)"
    )
    type: Text = Field(min_length=1, max_length=15, description="IVI Type (Text15)")
    variant: Text = Field(min_length=1, max_length=25, description="IVI Variant (Text25)")
    version: Text = Field(min_length=1, max_length=35, description="IVI Version (Text35)")
    category: Text = Field(min_length=1, description="IVI VehicleCategory code, e.g. M1 or N1")
    wmis: tuple[str, ...] = Field(
        default=(),
        description="World manufacturer identifiers (VIN positions 1-3) of the approval holder",
    )
    actual_mass_min_kg: int | None = Field(
        None, ge=0, le=1_000_000, description="Lowest actual mass a vehicle of this version may have (kg)"
    )
    actual_mass_max_kg: int | None = Field(
        None, ge=0, le=1_000_000, description="Highest actual mass a vehicle of this version may have (kg)"
    )
    certificate: CertificateTree = Field(
        default_factory=dict,
        description="CocDataGroup content fixed by the version, keyed by IVI element names",
    )
    source: ApprovalSource | None = Field(
        None, description="Who published this version and how (not master data: ignored by its hash)"
    )

    @field_validator("number")
    @classmethod
    def _number_format(cls, value: str) -> str:
        if not APPROVAL_NUMBER.match(value):
            raise ValueError("must look like e6*2018/858*00294*01 (e<state>*<act>*<base>*<ext>)")
        return value

    @field_validator("wmis")
    @classmethod
    def _wmi_format(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for wmi in value:
            if len(wmi) != 3 or not wmi.isalnum() or wmi.upper() != wmi:
                raise ValueError(f"WMI {wmi!r} must be three capital letters or digits")
        return value

    @field_validator("certificate")
    @classmethod
    def _certificate_bounded(cls, value: CertificateTree) -> CertificateTree:
        depth = _depth(value) if isinstance(value, dict | list) else 0
        if depth > CERTIFICATE_MAX_DEPTH:
            raise ValueError(f"nested {depth} levels deep; IVI 2.0 data is at most {CERTIFICATE_MAX_DEPTH}")
        size = len(json.dumps(value, separators=(",", ":"), default=str))
        if size > CERTIFICATE_MAX_BYTES:
            raise ValueError(
                f"{size} bytes as JSON; the certificate data of a version is at most {CERTIFICATE_MAX_BYTES}"
            )
        return value

    @model_validator(mode="after")
    def _mass_range_ordered(self) -> Approval:
        low, high = self.actual_mass_min_kg, self.actual_mass_max_kg
        if low is not None and high is not None and low > high:
            raise ValueError("actual_mass_min_kg is greater than actual_mass_max_kg")
        return self

    @property
    def key(self) -> str:
        """The approval key: the compacted topic's key and the lookup key of a build."""
        return approval_key(self.number, self.type, self.variant, self.version)

    @property
    def record_type(self) -> RecordType:
        """The record type of vehicles built to this version: its ``StageOfCompletion``, C when absent.

        C a complete vehicle, I an incomplete one (a chassis cab a body builder
        completes), V a completed one (a later stage of a multistage vehicle).
        IVI 2.0 StageOfCompletionCode; the tree's value decides (shared.ivi).
        """
        stage = self.certificate.get("StageOfCompletion")
        return stage if stage in RECORD_TYPES else "C"


def _depth(value: Any) -> int:
    """How deep a tree of dicts and lists goes (stops counting past the limit).

    A walk over the containers alone, without recursion: every message that
    carries an approval is checked on the way in (render parses one per
    certificate), and a walk that visited each leaf cost a tenth of its CPU.
    """
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        node, depth = todo.pop()
        children = node.values() if isinstance(node, dict) else node
        # A container's children sit one level below it; an empty one ends at its own level.
        reached = depth + 1 if children else depth
        if reached > deepest:
            deepest = reached
            if deepest > CERTIFICATE_MAX_DEPTH:
                return deepest
        todo.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def approval_key(number: str, type_: str, variant: str, version: str) -> str:
    return f"{number}|{type_}|{variant}|{version}"


def master_data_sha256(approval: Approval) -> str:
    """SHA-256 of an approval's master data in one canonical JSON form (sorted keys, no blanks).

    What a certificate was checked and rendered against, named by one value the
    workspace shows beside the certificate and on the approval's history.
    Validation names it for every record it decides, against the same few
    approval objects: each object's hash is computed once (12% of validation's
    CPU before). Contracts are frozen, so an object's hash cannot change.
    """
    seen = _HASHED.get(id(approval))
    if seen is not None and seen[0] is approval:
        return seen[1]
    data = approval.model_dump(mode="json", exclude=set(NOT_MASTER_DATA))
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    if len(_HASHED) >= HASHED_KEPT:
        _HASHED.clear()
    _HASHED[id(approval)] = (approval, digest)  # the object is kept, so its id is not reused
    return digest


def same_master_data(before: Approval | None, after: Approval) -> bool:
    """Whether two values of an approval hold the same master data (who published them aside)."""
    if before is None:
        return False
    return before is after or master_data_sha256(before) == master_data_sha256(after)


# Fields of an Approval that are not master data: the hash and every change check leave them out.
NOT_MASTER_DATA = frozenset({"source"})
HASHED_KEPT = 256
_HASHED: dict[int, tuple[Approval, str]] = {}
