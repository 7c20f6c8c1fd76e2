"""Whether two sealed certificates of one record id carry the same document under their seals.

The archive keeps one certificate per VIN and revision and answers a document
sent again with the receipt of the one it keeps. That is honest only when the
document is the kept one: the same bytes, or (a seal made again: XAdES with its
signing time, or an ECDSA key, seal differently each time) the same document
sealed anew, whose seal's Reference over the whole document (``URI=""``) has the
same digest and whose seal verifies (so that digest is the digest of what it
carries, not one copied over another document). Anything else is another
certificate for a record id the archive has answered for already, and is refused.

Pure: read on that rare path only (the bytes' SHA-256 differ).
"""

from __future__ import annotations

from shared.xml import DSIG_NS, XmlInputError, parse_bytes
from shared.xmldsig import verify

_DS = f"{{{DSIG_NS}}}"


def document_digest(xml: bytes) -> tuple[str, str] | None:
    """The digest method and value of the seal's Reference over the whole document, if it has one."""
    try:
        root = parse_bytes(xml)
    except XmlInputError:
        return None
    for reference in root.iterfind(f"{_DS}Signature/{_DS}SignedInfo/{_DS}Reference"):
        if reference.get("URI") != "":
            continue
        method = reference.find(f"{_DS}DigestMethod")
        value = reference.findtext(f"{_DS}DigestValue")
        if method is None or not value:
            return None
        return str(method.get("Algorithm") or ""), value.strip()
    return None


def same_document(kept: bytes, sent: bytes) -> bool:
    """Whether ``sent`` is ``kept`` or the same document sealed again (and its seal verifies)."""
    if kept == sent:
        return True
    digest = document_digest(kept)
    if digest is None or digest != document_digest(sent):
        return False
    try:
        return verify(sent, second_opinion=False).valid
    except XmlInputError:
        return False
