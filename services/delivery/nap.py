"""The EUCARIS national access point's message: the SOAP envelope out, the reply read back.

The public EUCARIS manuals give no WSDL or reply schema for the eCoC upload, so
everything about the message's shape is here, in one small module, to be
replaced when an access point publishes its own: the signed IVI document goes
base64-encoded inside a SOAP 1.2 envelope (its bytes untouched, so its seal
holds), with a message id derived from the certificate, so a resend after a cut
is the same message. The reply is read into a ``Reply``; the raw text is kept
with every receipt. The transport (mutual TLS) is the connector's business.
"""

from __future__ import annotations

import base64

from lxml import etree

from services.delivery.deliver import Answer, Reply, raw_text
from shared.contracts import Owner
from shared.xml import XmlInputError, parse_bytes

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
SUBMIT_NS = "urn:coc:eucaris:ecoc:submission:1"
CONTENT_TYPE = 'application/soap+xml; charset=utf-8; action="SubmitIvi"'
DUPLICATE_CODES = frozenset({"DUPLICATE_REFERENCE", "ALREADY_RECEIVED"})

_S, _M = f"{{{SOAP_NS}}}", f"{{{SUBMIT_NS}}}"


def envelope(
    signed_xml: bytes, message_id: str, version_number: int = 1, corrects: str | None = None
) -> bytes:
    """The SOAP request carrying one signed certificate.

    A correction (IviVersionNumber above 1) says so beside the document, as the
    IVI model has it: its version number and the IviReferenceId of the
    certificate it corrects (``m:Correction``), so the access point can replace
    the one it holds without opening the document.
    """
    root = etree.Element(f"{_S}Envelope", nsmap={"soap": SOAP_NS, "m": SUBMIT_NS})
    header = etree.SubElement(root, f"{_S}Header")
    etree.SubElement(header, f"{_M}MessageId").text = message_id
    body = etree.SubElement(root, f"{_S}Body")
    submit = etree.SubElement(body, f"{_M}SubmitIvi")
    etree.SubElement(submit, f"{_M}Document").text = base64.b64encode(signed_xml).decode()
    if version_number > 1 and corrects:
        correction = etree.SubElement(submit, f"{_M}Correction")
        etree.SubElement(correction, f"{_M}IviVersionNumber").text = str(version_number)
        etree.SubElement(correction, f"{_M}PreviousIviReferenceId").text = corrects
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def correction_of(request: bytes) -> tuple[int, str] | None:
    """The version number and corrected reference id a request names, if it is a correction (used by tests)."""
    root = parse_bytes(request)
    found = root.find(f"{_S}Body/{_M}SubmitIvi/{_M}Correction")
    if found is None:
        return None
    return int(found.findtext(f"{_M}IviVersionNumber") or 0), found.findtext(
        f"{_M}PreviousIviReferenceId"
    ) or ""


def document_of(request: bytes) -> tuple[str, bytes]:
    """The message id and the certificate of a request (what an access point reads; used by tests)."""
    root = parse_bytes(request)
    message_id = root.findtext(f"{_S}Header/{_M}MessageId") or ""
    encoded = root.findtext(f"{_S}Body/{_M}SubmitIvi/{_M}Document")
    if encoded is None:
        raise XmlInputError("no SubmitIvi/Document in the envelope")
    return message_id, base64.b64decode(encoded)


def read_reply(status: int, body: bytes) -> Reply:
    """What the access point said: accepted, a duplicate, a rejection of the data, or a fault to retry."""
    raw = raw_text(body)
    if status in (401, 403):
        return Reply(
            Answer.TRANSIENT,
            f"the access point refused our credentials (HTTP {status}): check the client certificate",
            http_status=status,
            raw=raw,
            owner=Owner.INTEGRATION,
        )
    try:
        root = parse_bytes(body)
    except XmlInputError as exc:
        return Reply(
            Answer.TRANSIENT, f"unreadable reply (HTTP {status}): {exc}", http_status=status, raw=raw
        )
    fault = root.find(f"{_S}Body/{_S}Fault")
    if fault is not None:
        return _fault(fault, status, raw)
    response = root.find(f"{_S}Body/{_M}SubmitIviResponse")
    if response is not None and (response.findtext(f"{_M}Status") or "").strip().upper() == "ACCEPTED":
        receipt = (response.findtext(f"{_M}ReceiptId") or "").strip() or None
        return Reply(Answer.ACCEPTED, "accepted", http_status=status, receipt_id=receipt, raw=raw)
    if status >= 500:
        return Reply(
            Answer.TRANSIENT, f"the access point failed (HTTP {status})", http_status=status, raw=raw
        )
    return Reply(Answer.TRANSIENT, f"a reply without an outcome (HTTP {status})", http_status=status, raw=raw)


def _fault(fault: etree._Element, status: int, raw: str) -> Reply:
    side = (fault.findtext(f"{_S}Code/{_S}Value") or "").strip()
    text = " ".join((fault.findtext(f"{_S}Reason/{_S}Text") or "").split())
    rejection = fault.find(f"{_S}Detail/{_M}Rejection")
    code = field = None
    if rejection is not None:
        code = (rejection.findtext(f"{_M}Code") or "").strip() or None
        field = (rejection.findtext(f"{_M}Field") or "").strip() or None
        receipt = (rejection.findtext(f"{_M}ReceiptId") or "").strip() or None
        if code in DUPLICATE_CODES:
            return Reply(Answer.DUPLICATE, text, code=code, http_status=status, receipt_id=receipt, raw=raw)
    if side.endswith("Receiver") or (status >= 500 and rejection is None):
        return Reply(
            Answer.TRANSIENT, f"the access point failed: {text or side}", http_status=status, raw=raw
        )
    return Reply(Answer.REJECTED, text or "rejected", code=code, field=field, http_status=status, raw=raw)
