"""A base vehicle's certificate, read for the next stage of a multistage vehicle.

The approval authority gives the next-stage manufacturer (a body builder
completing a chassis cab) the previous stage's IVI 2.0 document. Its facts go
into the completed vehicle's build record as ``previous_stage``: the VIN stays,
and the later stage names the previous stage's approval number, type, variant
and version (EUCARIS set-up manual, multistage; domain.md, "Filling rules").

What is checked here: the document is valid against the IVI 2.0 schema as
published (so it carries a signature) and its seal is intact, verified with the
project's own verifier from the bytes. Whether the previous manufacturer's seal
is to be trusted is not decided here: that trust is the authority's and the
previous manufacturer's to establish, not ours to give. The signer is named so a
person can judge it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree
from pydantic import ValidationError

from shared.contracts.base import reason_of
from shared.contracts.builds import PreviousStage
from shared.ivi import NAMESPACE, IviSchema, IviTreeError
from shared.xml import XmlInputError, parse_bytes, validate
from shared.xmldsig import verify

__all__ = ["BASE_MAX_BYTES", "BaseCertificate", "BaseCertificateError", "read_base", "refuse_hidden_nodes"]

# A certificate is some 20-60 KB; a megabyte is far more than any IVI 2.0 document needs.
BASE_MAX_BYTES: Final = 1_000_000
_NS: Final = f"{{{NAMESPACE}}}"


class BaseCertificateError(ValueError):
    """The document cannot serve as a base certificate; the message names the element or check."""


@dataclass(frozen=True, slots=True)
class BaseCertificate:
    """A checked base certificate: the facts a later stage names, and who sealed it."""

    previous_stage: PreviousStage
    stage_of_completion: str  # C, I or V: what the base vehicle was left as
    category: str
    signer: str  # the seal certificate's subject, as RFC 4514 text
    signer_fingerprint: str  # SHA-256 of the seal certificate


def read_base(xml: bytes, schema: IviSchema) -> BaseCertificate:
    """Check a previous stage's signed IVI 2.0 document and read the facts the next stage names."""
    if len(xml) > BASE_MAX_BYTES:
        raise BaseCertificateError(f"{len(xml)} bytes; a base certificate is at most {BASE_MAX_BYTES}")
    try:
        root = parse_bytes(xml)
    except XmlInputError as exc:
        raise BaseCertificateError(str(exc)) from exc
    if root.tag != f"{_NS}InitialVehicleInformation":
        raise BaseCertificateError(f"not an IVI 2.0 document: the root is {root.tag}")
    refuse_hidden_nodes(root)
    problems = validate(schema.validator, root)  # as published: the signature is required
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BaseCertificateError(f"not valid against IVI 2.0: {problems[0].replace(_NS, '')}{more}")
    try:
        seal = verify(xml)
    except XmlInputError as exc:
        raise BaseCertificateError(str(exc)) from exc
    if not seal.valid or seal.certificate is None:
        raise BaseCertificateError(f"the seal is not intact: {'; '.join(seal.reasons) or 'no certificate'}")
    doc = {name: _decoded(schema, root, name) for name in ("Header", "CocDataGroup")}
    return BaseCertificate(
        previous_stage=_previous_stage(doc, hashlib.sha256(xml).hexdigest()),
        stage_of_completion=_text(doc, "CocDataGroup/StageOfCompletion"),
        category=_text(doc, "CocDataGroup/VehicleCategory"),
        signer=seal.certificate.subject.rfc4514_string(),
        signer_fingerprint=seal.fingerprint or "",
    )


def refuse_hidden_nodes(root: etree._Element) -> None:
    """Refuse comments and processing instructions inside values.

    A value split by a comment (``<Variant>A<!---->B</Variant>``) would be read
    only up to the comment, and the seal does not cover comments: a document that
    verifies could be read with other values than it shows. Between elements a
    comment holds no value and is passed over.
    """
    for node in root.iter(etree.Comment, etree.ProcessingInstruction):
        parent = node.getparent()
        if parent is None or any(True for _ in parent.iterchildren(etree.Element)):
            continue
        names = [etree.QName(item).localname for item in [parent, *parent.iterancestors()]]
        where = "/".join(reversed(names[:-1])) or names[-1]
        kind = "a comment" if isinstance(node, etree._Comment) else "a processing instruction"
        raise BaseCertificateError(
            f"{where} holds {kind} inside its value; a value split by a comment or processing "
            "instruction would be read differently than it is displayed, so the document is refused"
        )


def last_stage(tree: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ManufacturerGroup of the highest ManufacturerStageNumber in a CocDataGroup tree."""
    groups = [
        g
        for g in (tree.get("ManufacturerTable") or {}).get("ManufacturerGroup") or []
        if isinstance(g, Mapping)
    ]
    numbered = [(_stage_number(g), index, g) for index, g in enumerate(groups)]
    return max(numbered, key=lambda item: (item[0], item[1]))[2] if numbered else None


def _stage_number(group: Mapping[str, Any]) -> int:
    try:
        return int(str(group.get("ManufacturerStageNumber", "")).strip())
    except ValueError:
        return 0


def _previous_stage(doc: Mapping[str, Any], sha256: str) -> PreviousStage:
    group = last_stage(doc["CocDataGroup"])
    if group is None:
        raise BaseCertificateError("CocDataGroup/ManufacturerTable has no ManufacturerGroup")
    try:
        return PreviousStage(
            reference_id=_text(doc, "Header/IviReferenceId"),
            sha256=sha256,
            vin=_text(doc, "CocDataGroup/VehicleIdentificationNumber"),
            stage=_stage_number(group),
            approval_number=_text(doc, "CocDataGroup/TypeApprovalNumber"),
            type=_text(doc, "CocDataGroup/Type"),
            variant=_text(doc, "CocDataGroup/Variant"),
            version=_text(doc, "CocDataGroup/Version"),
            manufacturer=str(group.get("ManufacturerName", "")),
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(step) for step in error["loc"])
        raise BaseCertificateError(f"previous_stage.{field}: {reason_of(error)}") from None


def _decoded(schema: IviSchema, root: etree._Element, name: str) -> dict[str, Any]:
    element = root.find(f"{_NS}{name}")
    if element is None:
        raise BaseCertificateError(f"missing element InitialVehicleInformation/{name}")
    try:
        return schema.decode(element)
    except IviTreeError as exc:
        raise BaseCertificateError(str(exc)) from exc


def _text(doc: Mapping[str, Any], path: str) -> str:
    node: Any = doc
    for step in path.split("/"):
        node = node.get(step) if isinstance(node, Mapping) else None
    if not isinstance(node, str) or not node.strip():
        raise BaseCertificateError(f"missing element {path}")
    return node.strip()
