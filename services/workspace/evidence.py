"""Release evidence for one certificate, and the certificate as a person reads it. Pure: bytes in, facts out.

The check is what a compliance officer shows an auditor: the document is
valid against the official IVI 2.0 schema as published, its seal verifies
(``shared.xmldsig``, with signxml's second opinion), which certificate sealed
it and whether that certificate was valid on the signature date, and that the
bytes are the ones the archive recorded (their SHA-256) in the VIN's hash chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from lxml import etree

from shared import codes
from shared.xml import DSIG_NS, IVI_NS, XmlInputError, parse_bytes, validate
from shared.xmldsig import verify

_IVI = f"{{{IVI_NS}}}"
_WORD = re.compile(r"[A-Z]+\d+(?=[A-Z]|$)|[A-Z]+(?=[A-Z][a-z]|\d|$)|[A-Z]?[a-z]+|\d+")
_ACRONYMS = {"Vin": "VIN", "Ivi": "IVI", "Wltp": "WLTP", "Nedc": "NEDC", "Id": "ID"}
_SPELLED = {"Co2": "CO2", "Nox": "NOX"}  # units written in capitals, digits included


@dataclass(frozen=True)
class CertificateCheck:
    """What was checked about one signed certificate, each fact with what it rests on."""

    sha256: str
    sha256_as_archived: bool
    schema_errors: tuple[str, ...]
    seal_valid: bool
    seal_reasons: tuple[str, ...]
    signer_fingerprint: str | None
    signer_subject: str | None
    signer_valid_from: dt.datetime | None
    signer_valid_until: dt.datetime | None
    signature_date: dt.date | None
    sealed_at: dt.datetime | None

    @property
    def schema_valid(self) -> bool:
        return not self.schema_errors

    @property
    def signer_valid_when_sealed(self) -> bool | None:
        """Whether the seal certificate was valid when the document was sealed (None: unknown).

        The document's SignatureDate is the date the manufacturer's signer is
        named for, taken from the record so that rendering is deterministic; the
        seal itself was applied just before the archive stored it, so that time
        (``sealed_at``) is what the certificate's validity is held against.
        """
        if None in (self.signer_valid_from, self.signer_valid_until, self.sealed_at):
            return None
        assert self.signer_valid_from and self.signer_valid_until and self.sealed_at
        return self.signer_valid_from <= self.sealed_at <= self.signer_valid_until

    @property
    def passed(self) -> bool:
        return (
            self.sha256_as_archived
            and self.schema_valid
            and self.seal_valid
            and self.signer_valid_when_sealed is not False
        )


def check(
    signed_xml: bytes, schema: etree.XMLSchema, archived_sha256: str, sealed_at: dt.datetime | None = None
) -> CertificateCheck:
    """Check a signed certificate as archived; bad XML is a failed check, not an exception."""
    sha256 = hashlib.sha256(signed_xml).hexdigest()
    try:
        root = parse_bytes(signed_xml)
        schema_errors = tuple(validate(schema, root))
        result = verify(signed_xml)
    except XmlInputError as exc:
        reason = f"not acceptable XML: {exc}"
        return CertificateCheck(
            sha256=sha256,
            sha256_as_archived=sha256 == archived_sha256,
            schema_errors=(reason,),
            seal_valid=False,
            seal_reasons=(reason,),
            signer_fingerprint=None,
            signer_subject=None,
            signer_valid_from=None,
            signer_valid_until=None,
            signature_date=None,
            sealed_at=sealed_at,
        )
    certificate = result.certificate
    return CertificateCheck(
        sha256=sha256,
        sha256_as_archived=sha256 == archived_sha256,
        schema_errors=schema_errors,
        seal_valid=result.valid,
        seal_reasons=result.reasons,
        signer_fingerprint=result.fingerprint,
        signer_subject=certificate.subject.rfc4514_string() if certificate else None,
        signer_valid_from=certificate.not_valid_before_utc if certificate else None,
        signer_valid_until=certificate.not_valid_after_utc if certificate else None,
        signature_date=_signature_date(root),
        sealed_at=sealed_at,
    )


def _signature_date(root: etree._Element) -> dt.date | None:
    found = root.find(f"{_IVI}CocDataGroup/{_IVI}SigningAuthorityTable//{_IVI}SignatureDate")
    if found is None or not found.text:
        return None
    try:
        return dt.date.fromisoformat(found.text.strip()[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class Section:
    """One group of the certificate: a title and its labelled values, in document order."""

    title: str
    rows: tuple[tuple[str, str], ...]


TIMES = frozenset({"IviVersionDateTime"})  # the schema's xs:dateTime elements (type DateTime)


def readable(signed_xml: bytes, say_time: Callable[[str], str] | None = None) -> list[Section]:
    """The certificate as a person reads it: the header, the vehicle's own values, then each group.

    Labels come from the IVI element names (``MaximumSpeed`` → "Maximum speed");
    a group that repeats is numbered; a coded value reads with its meaning ("D — Germany",
    ``shared.codes``); a time reads as ``say_time`` says it (the pages: in the plant's zone), with the
    document's own text beside it. The signature is left out: the check shows it.
    """
    shown = partial(_shown, say_time=say_time)
    root = parse_bytes(signed_xml)
    sections: list[Section] = []
    for part in root:
        if not isinstance(part.tag, str) or part.tag == f"{{{DSIG_NS}}}Signature":
            continue
        own = tuple((label(child), shown(child)) for child in part if len(child) == 0)
        if own:
            sections.append(Section(label(part), own))
        for child in part:
            if len(child) and isinstance(child.tag, str):
                sections.append(Section(_group_title(child), tuple(_rows(child, (), shown))))
    return sections


def _rows(
    element: etree._Element, path: tuple[str, ...], shown: Callable[[etree._Element], str]
) -> Iterator[tuple[str, str]]:
    children = [c for c in element if isinstance(c.tag, str)]
    counts: dict[str, int] = {}
    for child in children:
        counts[child.tag] = counts.get(child.tag, 0) + 1
    seen: dict[str, int] = {}
    for child in children:
        seen[child.tag] = seen.get(child.tag, 0) + 1
        name = label(child)
        if counts[child.tag] > 1:
            name = f"{name} {seen[child.tag]}"
        if len(child) == 0:
            yield " › ".join((*path, name)), shown(child)
        else:
            # A "...Group" wrapper inside a "...Table" adds nothing a reader needs but its number.
            step = (*path, name) if counts[child.tag] > 1 or not child.tag.endswith("Group") else path
            yield from _rows(child, step, shown)


def _group_title(element: etree._Element) -> str:
    return re.sub(r" (table|group)$", "", label(element))


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()


def _shown(element: etree._Element, say_time: Callable[[str], str] | None = None) -> str:
    """The element's value, and beside a code its meaning from the code tables; a time as people read it."""
    name, text = etree.QName(element).localname, _text(element)
    if name in TIMES and say_time is not None and text:
        said = say_time(text)
        return f"{said} (written {text})" if said != text else text
    return codes.decoded(name, text)


def label(element: etree._Element) -> str:
    """An IVI element name as words: ``WltpTotalCo2Emission`` → "WLTP total CO2 emission"."""
    local = etree.QName(element).localname
    for name, spelled in _SPELLED.items():
        local = local.replace(name, spelled)
    words = [_ACRONYMS.get(word, word) for word in _WORD.findall(local)] or [local]
    first, rest = words[0], [w if w.isupper() or w[0].isdigit() else w.lower() for w in words[1:]]
    return " ".join([first, *rest])
