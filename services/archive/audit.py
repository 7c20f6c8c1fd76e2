"""The archive audits itself: every certificate and every chain checked again. Pure: rows in, breaks out.

``coc audit`` streams the archive through an ``Auditor``. Each certificate is
checked on its own (``certificate``): its bytes still have the SHA-256 recorded
for them, it is valid against the official IVI 2.0 schema as published, its
seal verifies, the sealing certificate is trusted (a trust anchor, or issued by
one, when it was archived), and its release evidence is there and consistent
(the build is this VIN and revision, the approval snapshot it names is stored
and still has that hash). Then each VIN's chain (``chains``): the links follow
one another (each names the hash of the one before), the IviVersionNumbers run
1, 2, 3… without a gap, and the head the archive keeps is the last link and
lists exactly the revisions found. A removed or altered certificate shows as a
break that names its VIN.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from services.archive.stored_xml import StoredBytesError, xml_of
from shared.xml import IVI_NS, XmlInputError, parse_bytes, validate
from shared.xmldsig import trusted_by, verify

VIN_TAG = f"{{{IVI_NS}}}VehicleIdentificationNumber"


@dataclass(frozen=True)
class Break:
    """One thing the audit found wrong, named by VIN (and record, when it is one certificate's)."""

    vin: str
    record_id: str | None
    what: str


@dataclass(frozen=True)
class Link:
    """What the chain check needs of one certificate."""

    revision: int
    version_number: int | None
    sha256: str
    previous_sha256: str | None


@dataclass
class SealUsed:
    """A seal the audited certificates were sealed with: its certificate's subject, serial and SHA-256."""

    subject: str
    serial: str
    sha256: str
    certificates: int = 0


@dataclass
class Summary:
    certificates: int = 0
    vins: int = 0
    breaks: list[Break] = field(default_factory=list)
    seals: list[SealUsed] = field(default_factory=list)  # every seal found, most certificates first

    def broken_vins(self) -> list[str]:
        return sorted({b.vin for b in self.breaks})


class Auditor:
    """Checks archived certificates against the schema, the trusted signers and their evidence."""

    def __init__(
        self,
        schema: etree.XMLSchema,
        anchors: Sequence[x509.Certificate],
        approval_hash: Callable[[str], str | None],
    ) -> None:
        self.schema = schema
        self.anchors = list(anchors)
        self.approval_hash = approval_hash  # sha256 named → sha256 the stored snapshot has (None: missing)
        self.links: dict[str, list[Link]] = {}
        self._trusted: dict[bytes, str | None] = {}  # DER of a signer → why it is not trusted
        self.seals: dict[str, SealUsed] = {}  # fingerprint → the seal and how many certificates it sealed

    def certificate(self, row: Mapping[str, Any]) -> list[Break]:
        """The breaks of one stored certificate (none when it passes)."""
        vin, record_id = str(row.get("vin")), str(row.get("_id"))
        self.links.setdefault(vin, []).append(
            Link(
                int(row["revision"]),
                row.get("version_number"),
                str(row.get("sha256")),
                row.get("previous_sha256"),
            )
        )
        found: list[str] = []
        try:
            xml = xml_of(row)
        except StoredBytesError as exc:
            return [Break(vin, record_id, f"its stored bytes cannot be read: {exc}")]
        if hashlib.sha256(xml).hexdigest() != row.get("sha256"):
            found.append("its bytes no longer have the SHA-256 recorded when it was archived")
        try:
            root = parse_bytes(xml)
        except XmlInputError as exc:
            return [
                Break(vin, record_id, f"not readable XML: {exc}"),
                *self._as_breaks(vin, record_id, found),
            ]
        errors = validate(self.schema, root)
        if errors:
            found.append(f"not valid against the IVI 2.0 schema: {errors[0]}")
        found.extend(self._seal(xml, row.get("archived_at")))
        found.extend(self._evidence(row, root))
        return self._as_breaks(vin, record_id, found)

    def _seal(self, xml: bytes, archived_at: Any) -> list[str]:
        result = verify(xml, second_opinion=False)
        if not result.valid:
            return [f"seal does not verify: {result.reasons[0]}"]
        if result.certificate is None:
            return ["seal has no certificate"]
        der = result.certificate.public_bytes(Encoding.DER)
        fingerprint = hashlib.sha256(der).hexdigest()
        used = self.seals.get(fingerprint)
        if used is None:
            used = self.seals[fingerprint] = SealUsed(
                result.certificate.subject.rfc4514_string(),
                f"{result.certificate.serial_number:x}",
                fingerprint,
            )
        used.certificates += 1
        if der not in self._trusted:
            when = archived_at if isinstance(archived_at, dt.datetime) else dt.datetime.now(dt.UTC)
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
            self._trusted[der] = trusted_by(result.certificate, self.anchors, when)
        distrust = self._trusted[der]
        return [f"signer not trusted: {distrust}"] if distrust else []

    def _evidence(self, row: Mapping[str, Any], root: etree._Element) -> list[str]:
        evidence = row.get("evidence")
        if not evidence:
            return ["no release evidence kept with it"]
        found = []
        build = evidence.get("build") or {}
        if build.get("vin") != row.get("vin") or build.get("revision") != row.get("revision"):
            found.append(
                f"its evidence is the build of {build.get('vin')}:{build.get('revision')}, not of this record"
            )
        in_document = root.find(f".//{VIN_TAG}")
        if in_document is None or (in_document.text or "").strip() != row.get("vin"):
            found.append("the VIN in the document is not the VIN it is archived under")
        named = evidence.get("approval_sha256")
        stored = self.approval_hash(str(named)) if named else None
        if stored is None and evidence.get("approval_carried") is False:
            found.append(f"the approval snapshot {named} was too large to travel with it and is not kept")
        elif stored is None:
            found.append(f"the approval snapshot it names ({named}) is not stored")
        elif stored != named:
            found.append(f"the approval snapshot {named} was altered (its data now hashes to {stored})")
        return found

    def chains(self, heads: Mapping[str, Mapping[str, Any]]) -> list[Break]:
        """The breaks of every VIN's chain, from the links seen by ``certificate`` and the stored heads."""
        found: list[Break] = []
        for vin in sorted(set(self.links) | set(heads)):
            found.extend(
                Break(vin, None, what) for what in chain_breaks(self.links.get(vin, []), heads.get(vin))
            )
        return found

    @staticmethod
    def _as_breaks(vin: str, record_id: str, found: list[str]) -> list[Break]:
        return [Break(vin, record_id, what) for what in found]


def chain_breaks(links: Sequence[Link], head: Mapping[str, Any] | None) -> list[str]:
    """Why one VIN's chain is broken (nothing when it is whole).

    The chain is the revisions the head lists, in that order (a late older
    revision is kept outside it, unlinked, as the archive stores it); a head
    without that list (archived before it was kept) chains every certificate
    by revision.
    """
    found: list[str] = []
    by_revision = {link.revision: link for link in links}
    listed = [int(r) for r in head.get("revisions") or ()] if head is not None else []
    if listed:
        missing = [r for r in listed if r not in by_revision]
        if missing:
            found.append(f"revisions {missing} are in the chain but their certificates are missing")
        chain = [by_revision[r] for r in listed if r in by_revision]
    else:
        chain = sorted(links, key=lambda link: link.revision)
    previous: Link | None = None
    for link in chain:
        expected = previous.sha256 if previous else None
        if link.previous_sha256 != expected:
            if previous is None:
                found.append(f"revision {link.revision} links to a certificate that is not there")
            else:
                found.append(
                    f"revision {link.revision} does not link to revision {previous.revision} before it "
                    "(a certificate between them is missing or was altered)"
                )
        previous = link
    numbers = [link.version_number for link in chain]
    if numbers and numbers != list(range(1, len(numbers) + 1)):
        found.append(f"IviVersionNumbers {numbers} do not run 1 to {len(numbers)}: a certificate is missing")
    if head is None:
        if chain:
            found.append("the archive keeps no head for this VIN")
        return found
    last = chain[-1] if chain else None
    if last is None or head.get("revision") != last.revision or head.get("sha256") != last.sha256:
        found.append(
            f"the head names revision {head.get('revision')}, but the last certificate found is "
            f"{'none' if last is None else f'revision {last.revision}'}: a certificate is missing or was altered"
        )
    return found
