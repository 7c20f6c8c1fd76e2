"""Which seal seals a document: its approval holder's registered seal, or the installation's one seal.

IVI 2.0 guidelines: the type-approval holder (or its EU representative) seals.
Render names the holder on every document (``Document.seal_holder``); the seal
registry on coc.seals.v1 (``shared.contracts.seals``) names each holder's seal.
``SealBook`` keeps the seals opened from it and chooses:

- a holder with a registered seal gets that seal; a registration that cannot be
  opened (a key file missing, a certificate that does not fit the key or has
  expired) leaves the holder without a seal, with the reason;
- the seal of the settings (COC_SEAL_KEY/COC_SEAL_CERT or the token's key) seals
  for the holder COC_SEAL_HOLDER names, or, when that is unset, for every holder
  without a registration (an installation for one holder, as before the registry);
- any other holder has no seal: its records wait (``SEAL_MISSING``, integration's)
  until one is registered.

A newer registration of a holder replaces its seal at once, between two
documents: that is a rotation, with no restart. Documents sealed before keep
their certificate in KeyInfo, so they verify as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from services.signing.seal import Seal
from shared.contracts import Finding, Owner, Severity
from shared.contracts.seals import SealRegistration, holder_key
from shared.seal_table import SealTable

SEAL_MISSING = "SEAL_MISSING"
SEAL_PATH = "Signature/KeyInfo/X509Data/X509Certificate"


@dataclass(frozen=True)
class Missing:
    """No seal for a holder, and why."""

    holder: str | None
    reason: str

    def finding(self) -> Finding:
        return Finding(
            code=SEAL_MISSING,
            path=SEAL_PATH,
            message=self.reason,
            severity=Severity.ERROR,
            owner=Owner.INTEGRATION,
        )


class SealUnusable(Exception):
    """A registered seal cannot be opened; the message says why, in one line."""


Opener = Callable[[SealRegistration], Seal]


@dataclass
class SealBook:
    """The seals signing may use now: the settings' one and those registered per holder."""

    default: Seal | None = None
    default_holder: str | None = None  # COC_SEAL_HOLDER, normalised; None: the default serves any holder
    table: SealTable = field(default_factory=SealTable)
    seals: dict[str, Seal] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # holder → why its registered seal cannot seal
    retired: list[Seal] = field(default_factory=list)  # replaced seals: their token sessions close at stop

    def __post_init__(self) -> None:
        if self.default_holder is not None:
            self.default_holder = holder_key(self.default_holder)

    def choose(self, holder: str | None) -> Seal | Missing:
        """The seal for a document of ``holder`` (None: a document that names none), or why there is none."""
        key = holder_key(holder) if holder else None
        if key is not None:
            seal = self.seals.get(key)
            if seal is not None:
                return seal
            if key in self.refused:
                return Missing(key, self.refused[key])
        if self.default is not None and (key is None or self.default_holder in (None, key)):
            return self.default
        return Missing(
            key,
            f"no seal is registered for the approval holder {key}; integration registers one "
            "(coc seals add) and the record is sealed then",
        )

    def take(self, registration: SealRegistration, opener: Opener) -> bool:
        """Apply a registration (newest per holder wins); True when the holder's seal changed."""
        if not self.table.add(registration):
            return False
        holder = registration.holder
        before = self.seals.pop(holder, None)
        if before is not None:
            self.retired.append(before)
        self.refused.pop(holder, None)
        if not registration.active:
            self.refused[holder] = (
                f"the seal of {holder} was withdrawn by {registration.set_by}; integration registers a new one"
            )
            return True
        try:
            self.seals[holder] = opener(registration)
        except SealUnusable as exc:
            self.refused[holder] = f"the registered seal of {holder} cannot seal: {exc}"
        return True

    def sealable(self, holder: str) -> bool:
        return isinstance(self.choose(holder), Seal)

    def all_seals(self) -> list[Seal]:
        """Every seal opened, current and replaced (for closing)."""
        return [seal for seal in (self.default, *self.seals.values(), *self.retired) if seal is not None]
