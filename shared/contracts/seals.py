"""The seal registry: which seal each approval holder seals with, master data integration keeps.

IVI 2.0 guidelines: only the type-approval holder (or its EU representative, both
named in the whole-vehicle type approval) seals a certificate, and one
installation may build for several holders. The holder of a record is the
manufacturer its approval names (``holder_of``: the last stage's
``ManufacturerName`` of the approval's ``ManufacturerTable``). Integration
registers a holder's seal on the compacted topic ``coc.seals.v1`` (key = the
holder, normalised): the certificate itself, and where its key is, never the key
(a key file on signing's host, or a key label on the PKCS#11 token signing is
configured for). A newer registration of a holder replaces the older one at run
time: that is how a seal is rotated. Signing reads the topic whole at start and
then live; the workspace's seals page lists it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pydantic import AwareDatetime, Field, field_validator, model_validator

from shared.contracts.approvals import Approval
from shared.contracts.base import Contract, PersonName, Text

CERTIFICATE_PEM_MAX = 16_000  # a seal certificate is 1 to 3 KB as PEM; a chain is not asked for here
HOLDER_MAX = 150  # IVI ManufacturerName is a Text150


def holder_key(name: str) -> str:
    """A holder as the registry keys it: blanks collapsed, upper case (IVI names are written in capitals)."""
    return " ".join(name.split()).upper()


def holder_of(approval: Approval) -> str | None:
    """The approval holder of vehicles built to ``approval``: its last stage's ManufacturerName.

    A complete vehicle's approval names one manufacturer; a multistage approval
    names every stage so far, this stage last (``services.validation.multistage``).
    None when the approval names no manufacturer (then the installation's one seal applies).
    """
    return holder_in(approval.certificate)


def holder_in(certificate: Mapping[str, Any]) -> str | None:
    """``holder_of`` for an approval's certificate tree as it is stored (JSON)."""
    table = certificate.get("ManufacturerTable")
    groups: Any = table.get("ManufacturerGroup") if isinstance(table, dict) else None
    if isinstance(groups, dict):
        groups = [groups]
    if not isinstance(groups, list) or not groups:
        return None
    name = groups[-1].get("ManufacturerName") if isinstance(groups[-1], dict) else None
    return holder_key(name) if isinstance(name, str) and name.strip() else None


class SealRegistration(Contract):
    """An approval holder's seal registered (or withdrawn) by integration (coc.seals.v1, key = holder)."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    holder: str = Field(
        min_length=1,
        max_length=HOLDER_MAX,
        description="The approval holder as the approval's ManufacturerName names it (the key, normalised)",
    )
    certificate_pem: str = Field(
        min_length=1, max_length=CERTIFICATE_PEM_MAX, description="The seal certificate, PEM"
    )
    key_file: str | None = Field(
        None,
        max_length=1024,
        description="Absolute path of the seal's PKCS#8 PEM key on the signing service's host (a file key)",
    )
    pkcs11_key: str | None = Field(
        None,
        max_length=128,
        description="Label of the seal's private key on the PKCS#11 token signing is configured for",
    )
    active: bool = Field(True, description="False: withdrawn; the holder's records wait for a seal again")
    set_by: PersonName = Field(min_length=1, max_length=128, description="Name of the person who set it")
    set_at: AwareDatetime = Field(description="When it was set")
    comment: Text | None = Field(None, max_length=2000, description="Why, as the person said")

    @field_validator("holder")
    @classmethod
    def _holder_normalised(cls, value: str) -> str:
        if any(not char.isprintable() for char in value) or any(char in value for char in '<>"&'):
            raise ValueError('may not hold control characters or < > " &')
        return holder_key(value)

    @field_validator("key_file")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or "\x00" in value or "/../" in f"{value}/"):
            raise ValueError("must be an absolute path without '..'")
        return value

    @field_validator("certificate_pem")
    @classmethod
    def _one_certificate(cls, value: str) -> str:
        try:
            x509.load_pem_x509_certificate(value.encode())
        except ValueError as exc:
            raise ValueError(f"is not a PEM certificate ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_key(self) -> SealRegistration:
        if self.active and (self.key_file is None) == (self.pkcs11_key is None):
            raise ValueError("give exactly one of key_file and pkcs11_key")
        return self

    @property
    def key(self) -> str:
        """The topic's key: one registration per holder, the newest kept by compaction."""
        return self.holder

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate's DER, lower-case hex (as archive names a seal)."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def days_left(self, now: dt.datetime) -> int:
        """Whole days until the certificate expires (negative once it has)."""
        return (self.certificate.not_valid_after_utc - now).days
