"""The electronic seal: enveloped XML-DSig over a whole IVI 2.0 document, and its check.

The EUCARIS set-up manual asks for an enveloped W3C XML Signature over the document,
exclusive canonicalisation, RSA-SHA256 with SHA-256 digests and the seal certificate in
KeyInfo. So every signature made here has exactly this SignedInfo:

- ``CanonicalizationMethod`` exclusive c14n (W3C Exclusive XML Canonicalization 1.0),
- ``SignatureMethod`` rsa-sha256 (RFC 6931 §2.3.2) or, as an option, ecdsa-sha256
  (RFC 6931 §2.3.6, XML-DSig 1.1 §6.4.3),
- one ``Reference URI=""``, the whole document without comments (XML-DSig 1.1 §4.4.3.3),
  with the enveloped-signature transform (§6.6.4) and exclusive c14n as transforms,
- ``DigestMethod`` SHA-256 (XML Encryption 1.1 §5.7.2, ``xmlenc#sha256``),

and ``KeyInfo/X509Data/X509Certificate`` holds the seal certificate (§4.5.4).

Signing works on bytes with lxml and ``cryptography`` directly: the document is parsed
once (it must be well-formed XML without a DTD) and its exclusive canonical form is
digested. What ``render`` publishes is already in that form apart from its XML
declaration; that is recognised from the bytes (``_already_canonical``) instead of
canonicalising the tree again, and anything else goes through lxml's canonicaliser.
The output is that canonical form with the ``ds:Signature`` placed as the last child
of the root (the IVI root is an ``xs:all``, so any position is valid; last is what
readers expect), so it is exactly the bytes that were digested, plus an XML
declaration and the signature. Keys are passed in by the caller; nothing here reads
a file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
)
from lxml import etree

from shared.xml import DSIG_NS, parse_bytes
from shared.xmldsig import (
    C14N_10,
    DIGEST_SHA256,
    ECDSA_SHA256,
    ENVELOPED,
    EXC_C14N,
    RSA_SHA256,
    SIGNATURE_TAG,
    SIGNED_PROPERTIES_TYPE,
    XADES_NS,
    CertificateError,
    VerifyResult,
    c14n,
    certificate_fingerprint,
    certificate_refusal,
    check_signature_value,
    verify,
)

__all__ = [
    "C14N_10",
    "DIGEST_SHA256",
    "ECDSA_SHA256",
    "ENVELOPED",
    "EXC_C14N",
    "RSA_SHA256",
    "CertificateError",
    "FileKeySigner",
    "Seal",
    "SealKey",
    "Signer",
    "SigningError",
    "VerifyResult",
    "certificate_fingerprint",
    "verify",
]

# ETSI TS 119 312 (cryptographic suites for eIDAS signatures and seals) keeps RSA
# below 2048 bits out; P-256 is the one ECDSA curve the option offers.
MIN_RSA_BITS: Final = 2048
P256_FIELD_BYTES: Final = 32

_DS = f"{{{DSIG_NS}}}"
_XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_PKCS1V15: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()
# Markers in the templates; base64 text never contains these characters.
_DIGEST_MARK: Final = "@DIGEST@"
_VALUE_MARK: Final = "@VALUE@"
_PROPS_DIGEST_MARK: Final = "@PROPSDIGEST@"
_TIME_MARK: Final = "@TIME@"
_TIMESTAMP_MARK: Final = "@TIMESTAMP@"

# XAdES (ETSI EN 319 132-1), baseline B-B: the signing time and the signing certificate are
# signed properties, referenced from SignedInfo; the seal stays enveloped over URI="".
SIGNATURE_ID: Final = "ecoc-seal"
PROPERTIES_ID: Final = "ecoc-seal-signedprops"
DOCUMENT_REFERENCE_ID: Final = "ecoc-seal-document"
TIMESTAMP_ID: Final = "ecoc-seal-timestamp"
FORMATS: Final = ("xmldsig", "xades-b", "xades-t")

# XAdES baseline T (ETSI EN 319 132-1 §5.3, 319 132-2 §4.1): the SignatureTimeStamp is an RFC 3161
# token over the ds:SignatureValue element, canonicalised as its CanonicalizationMethod says. The
# caller gets that token: ``timestamp`` receives the canonical bytes and returns the token's DER
# (a TimeStampToken, a CMS ContentInfo); signing never talks to the network itself.
Timestamp = Callable[[bytes], bytes]


class SigningError(Exception):
    """Base error of the signing service: a document could not be sealed."""


SealKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@runtime_checkable
class Signer(Protocol):
    """What makes a SignatureValue: the one operation that needs the seal's private key.

    ``sign`` gets the canonical bytes of SignedInfo and returns the SignatureValue's
    octets for ``signature_method`` (RSASSA-PKCS1-v1_5 over SHA-256, or ECDSA r || s);
    canonicalisation, digests, XAdES properties and KeyInfo stay with ``Seal``. A file
    key (``FileKeySigner``) and a PKCS#11 token key (``services.signing.adapters.pkcs11``)
    are the two kinds; ``blocking`` says whether ``sign`` waits on something outside the
    process (a token), so the caller runs it off the event loop.
    """

    blocking: bool

    def public_key(self) -> CertificatePublicKeyTypes: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class FileKeySigner:
    """A private key held in memory by ``cryptography`` (read from a PEM file by the caller)."""

    key: SealKey
    blocking: bool = False

    def public_key(self) -> CertificatePublicKeyTypes:
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            # RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6931 §2.3.2, RFC 8017 §8.2).
            return self.key.sign(data, _PKCS1V15, _SHA256)
        # XML-DSig 1.1 §6.4.3: the value is r || s, each left-padded to the field size,
        # not the DER SEQUENCE that OpenSSL returns.
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(P256_FIELD_BYTES, "big") + s.to_bytes(P256_FIELD_BYTES, "big")


@dataclass(frozen=True)
class _Templates:
    """Canonical bytes of SignedInfo, of the whole Signature and (XAdES) of SignedProperties.

    Each is split at its markers, in document order: SignedInfo at the document digest
    (and the properties' digest), the Signature at those, its value (and the signing
    time), the SignedProperties at the signing time.
    """

    signed_info: tuple[bytes, ...]
    signature: tuple[bytes, ...]
    signed_properties: tuple[bytes, ...] = ()
    signature_value: tuple[bytes, ...] = ()  # XAdES-T: the SignatureValue element, split at the value


@dataclass(frozen=True, eq=False)
class Seal:
    """A seal key with its certificate, made once and used for every document.

    ``key`` is a private key in memory (``cryptography``) or any ``Signer``, such as a
    key on a PKCS#11 token; only the SignatureValue comes from it. Everything that does not depend on the document (algorithm, certificate encoding,
    the canonical Signature template) is prepared here, so ``sign`` does one parse, one
    canonicalisation, one digest and one private-key operation.
    """

    key: SealKey | Signer
    certificate: x509.Certificate
    format: str = "xmldsig"  # or "xades-b", "xades-t" (FORMATS)
    signer: Signer = field(init=False, repr=False)
    signature_method: str = field(init=False)
    fingerprint: str = field(init=False)
    _templates: _Templates = field(init=False, repr=False)
    _public_key: CertificatePublicKeyTypes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        signer = FileKeySigner(self.key) if isinstance(self.key, SealKey) else self.key
        method = _signature_method_for(signer.public_key())
        public_key = self.certificate.public_key()
        if public_key != signer.public_key():
            raise SigningError("the seal certificate does not belong to the seal key")
        refusal = certificate_refusal(self.certificate, dt.datetime.now(dt.UTC))
        if refusal:
            raise SigningError(refusal)
        if self.format not in FORMATS:
            raise SigningError(f"unknown seal format {self.format!r}; choose one of {', '.join(FORMATS)}")
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        cert_b64 = base64.b64encode(der)
        object.__setattr__(self, "signer", signer)
        object.__setattr__(self, "signature_method", method)
        object.__setattr__(self, "_public_key", public_key)
        object.__setattr__(self, "fingerprint", certificate_fingerprint(self.certificate))
        templates = (
            _build_xades_templates(
                method, cert_b64.decode(), hashlib.sha256(der).digest(), self.format == "xades-t"
            )
            if self.format in ("xades-b", "xades-t")
            else _build_templates(method, cert_b64.decode())
        )
        object.__setattr__(self, "_templates", templates)

    @classmethod
    def from_pem(
        cls, key_pem: bytes, cert_pem: bytes, password: bytes | None = None, format: str = "xmldsig"
    ) -> Seal:
        """Load a PKCS#8 (or traditional) PEM key and its PEM certificate."""
        try:
            key = serialization.load_pem_private_key(key_pem, password=password)
            certificate = x509.load_pem_x509_certificate(cert_pem)
        except (ValueError, TypeError) as exc:
            raise SigningError(f"cannot load the seal key or certificate: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SigningError(f"unsupported seal key type {type(key).__name__}")
        return cls(key=key, certificate=certificate, format=format)

    def sign(
        self, unsigned_xml: bytes, signing_time: dt.datetime | None = None, timestamp: Timestamp | None = None
    ) -> bytes:
        """Seal a document; the result is checked against the certificate before it is returned.

        XAdES-T needs ``timestamp`` (see ``Timestamp``); whatever it raises propagates, so a
        document is never sealed without its timestamp. Raises ``XmlInputError`` for input that is not acceptable XML and ``SigningError``
        when the document cannot be sealed or the fresh signature does not verify.
        """
        if dt.datetime.now(dt.UTC) > self.certificate.not_valid_after_utc:
            raise SigningError(
                f"the seal certificate expired on {self.certificate.not_valid_after_utc.isoformat()}"
            )
        root = parse_bytes(unsigned_xml)
        canonical, cut = _already_canonical(unsigned_xml, root) or _canonical_form(root)
        digest_b64 = base64.b64encode(hashlib.sha256(canonical).digest())
        templates = self._templates
        if templates.signed_properties:
            # XAdES: the signing time goes into SignedProperties, whose digest SignedInfo signs.
            when = (signing_time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
            time = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
            props_b64 = base64.b64encode(hashlib.sha256(time.join(templates.signed_properties)).digest())
            si = templates.signed_info
            signed_info = si[0] + digest_b64 + si[1] + props_b64 + si[2]
            value = self._sign_bytes(signed_info)
            pieces = [digest_b64, props_b64, base64.b64encode(value), time]
            if templates.signature_value:
                pieces.append(self._timestamp(signed_info, value, timestamp))
            parts = templates.signature
            signature = b"".join(part for pair in zip(parts, [*pieces, b""], strict=True) for part in pair)
        else:
            si_open, si_close = templates.signed_info
            signed_info = si_open + digest_b64 + si_close
            value = self._sign_bytes(signed_info)
            sig_open, sig_mid, sig_close = templates.signature
            signature = sig_open + digest_b64 + sig_mid + base64.b64encode(value) + sig_close
        self._verify_fresh_signature(signed_info, value)
        view = memoryview(canonical)
        return b"".join((_XML_DECLARATION, view[:cut], signature, view[cut:]))

    def expires_within(self, days: int, now: dt.datetime | None = None) -> dt.datetime | None:
        """The seal certificate's end of validity when it comes within ``days``; else None."""
        end = self.certificate.not_valid_after_utc
        return end if end - (now or dt.datetime.now(dt.UTC)) <= dt.timedelta(days=days) else None

    def _sign_bytes(self, data: bytes) -> bytes:
        return self.signer.sign(data)

    def _timestamp(self, signed_info: bytes, value: bytes, timestamp: Timestamp | None) -> bytes:
        """The base64 of an RFC 3161 token over the canonical SignatureValue, for a checked signature only."""
        if timestamp is None:
            raise SigningError("XAdES-T needs a timestamp authority: set COC_TSA_URL")
        self._verify_fresh_signature(signed_info, value)
        before, after = self._templates.signature_value
        return base64.b64encode(timestamp(before + base64.b64encode(value) + after))

    def _verify_fresh_signature(self, signed_info: bytes, value: bytes) -> None:
        """Verify the fresh SignatureValue with the certificate's public key.

        A key that does not fit its certificate, or a faulty private-key operation (the
        reason RSA-CRT output is checked, RFC 8017 §8.2.2 verification), must never leave
        the service. The Reference needs no second hash: the output is the digested
        canonical bytes with the Signature spliced in before the root's end tag, so the
        enveloped-signature transform gives those bytes back. ``verify`` does the full
        parse-based check; the tests hold it, and xmlsec1, to the same outputs.
        """
        reason = check_signature_value(self._public_key, self.signature_method, value, signed_info)
        if reason:
            raise SigningError(f"fresh signature failed verification: {reason}")


def _signature_method_for(key: CertificatePublicKeyTypes) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise SigningError(f"RSA seal key has {key.key_size} bits; at least 2048 are needed")
        return RSA_SHA256
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningError(f"unsupported seal key type {type(key).__name__}")
    if isinstance(key.curve, ec.SECP256R1):
        return ECDSA_SHA256
    raise SigningError(f"ECDSA seal key on {key.curve.name}; only P-256 is supported")


def _build_templates(method: str, cert_b64: str) -> _Templates:
    """Build the Signature once with lxml and keep its exclusive-c14n bytes.

    Letting lxml canonicalise the template (instead of typing canonical XML by hand)
    guarantees that SignedInfo is signed in exactly the form a verifier recomputes
    (XML-DSig 1.1 §3.1.2: SignedInfo is canonicalised with CanonicalizationMethod).
    """
    ds = _DS
    signature = etree.Element(f"{ds}Signature", nsmap={"ds": DSIG_NS})
    signed_info = etree.SubElement(signature, f"{ds}SignedInfo")
    etree.SubElement(signed_info, f"{ds}CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(signed_info, f"{ds}SignatureMethod", Algorithm=method)
    reference = etree.SubElement(signed_info, f"{ds}Reference", URI="")
    transforms = etree.SubElement(reference, f"{ds}Transforms")
    etree.SubElement(transforms, f"{ds}Transform", Algorithm=ENVELOPED)
    etree.SubElement(transforms, f"{ds}Transform", Algorithm=EXC_C14N)
    etree.SubElement(reference, f"{ds}DigestMethod", Algorithm=DIGEST_SHA256)
    etree.SubElement(reference, f"{ds}DigestValue").text = _DIGEST_MARK
    etree.SubElement(signature, f"{ds}SignatureValue").text = _VALUE_MARK
    key_info = etree.SubElement(signature, f"{ds}KeyInfo")
    x509_data = etree.SubElement(key_info, f"{ds}X509Data")
    etree.SubElement(x509_data, f"{ds}X509Certificate").text = cert_b64

    si_bytes = c14n(signed_info, exclusive=True)
    sig_bytes = c14n(signature, exclusive=True)
    si_open, si_close = si_bytes.split(_DIGEST_MARK.encode())
    sig_open, rest = sig_bytes.split(_DIGEST_MARK.encode())
    sig_mid, sig_close = rest.split(_VALUE_MARK.encode())
    return _Templates(signed_info=(si_open, si_close), signature=(sig_open, sig_mid, sig_close))


def _build_xades_templates(
    method: str, cert_b64: str, cert_sha256: bytes, timestamped: bool = False
) -> _Templates:
    """The XAdES baseline B-B Signature, built once with lxml like the plain one.

    SignedInfo references the document (URI="", enveloped, exclusive c14n) and the
    SignedProperties (by Id, exclusive c14n, Type SignedProperties). The properties
    hold the signing time, the signing certificate (SigningCertificateV2: the SHA-256
    of its DER) and the format of the signed document (DataObjectFormat, text/xml).
    """
    ds, xa = _DS, f"{{{XADES_NS}}}"
    signature = etree.Element(f"{ds}Signature", nsmap={"ds": DSIG_NS}, Id=SIGNATURE_ID)
    signed_info = etree.SubElement(signature, f"{ds}SignedInfo")
    etree.SubElement(signed_info, f"{ds}CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(signed_info, f"{ds}SignatureMethod", Algorithm=method)
    document = etree.SubElement(signed_info, f"{ds}Reference", Id=DOCUMENT_REFERENCE_ID, URI="")
    transforms = etree.SubElement(document, f"{ds}Transforms")
    etree.SubElement(transforms, f"{ds}Transform", Algorithm=ENVELOPED)
    etree.SubElement(transforms, f"{ds}Transform", Algorithm=EXC_C14N)
    etree.SubElement(document, f"{ds}DigestMethod", Algorithm=DIGEST_SHA256)
    etree.SubElement(document, f"{ds}DigestValue").text = _DIGEST_MARK
    props_ref = etree.SubElement(
        signed_info, f"{ds}Reference", Type=SIGNED_PROPERTIES_TYPE, URI=f"#{PROPERTIES_ID}"
    )
    props_transforms = etree.SubElement(props_ref, f"{ds}Transforms")
    etree.SubElement(props_transforms, f"{ds}Transform", Algorithm=EXC_C14N)
    etree.SubElement(props_ref, f"{ds}DigestMethod", Algorithm=DIGEST_SHA256)
    etree.SubElement(props_ref, f"{ds}DigestValue").text = _PROPS_DIGEST_MARK
    etree.SubElement(signature, f"{ds}SignatureValue").text = _VALUE_MARK
    key_info = etree.SubElement(signature, f"{ds}KeyInfo")
    etree.SubElement(etree.SubElement(key_info, f"{ds}X509Data"), f"{ds}X509Certificate").text = cert_b64
    qualifying = etree.SubElement(
        etree.SubElement(signature, f"{ds}Object"),
        f"{xa}QualifyingProperties",
        nsmap={"xades": XADES_NS},
        Target=f"#{SIGNATURE_ID}",
    )
    props = etree.SubElement(qualifying, f"{xa}SignedProperties", Id=PROPERTIES_ID)
    signature_props = etree.SubElement(props, f"{xa}SignedSignatureProperties")
    etree.SubElement(signature_props, f"{xa}SigningTime").text = _TIME_MARK
    cert_digest = etree.SubElement(
        etree.SubElement(etree.SubElement(signature_props, f"{xa}SigningCertificateV2"), f"{xa}Cert"),
        f"{xa}CertDigest",
    )
    etree.SubElement(cert_digest, f"{ds}DigestMethod", Algorithm=DIGEST_SHA256)
    etree.SubElement(cert_digest, f"{ds}DigestValue").text = base64.b64encode(cert_sha256).decode()
    data_format = etree.SubElement(
        etree.SubElement(props, f"{xa}SignedDataObjectProperties"),
        f"{xa}DataObjectFormat",
        ObjectReference=f"#{DOCUMENT_REFERENCE_ID}",
    )
    etree.SubElement(data_format, f"{xa}MimeType").text = "text/xml"
    marks = [_DIGEST_MARK, _PROPS_DIGEST_MARK, _VALUE_MARK, _TIME_MARK]
    value_element = signature.find(f"{ds}SignatureValue")
    assert value_element is not None
    if timestamped:
        unsigned = etree.SubElement(
            etree.SubElement(qualifying, f"{xa}UnsignedProperties"), f"{xa}UnsignedSignatureProperties"
        )
        stamp = etree.SubElement(unsigned, f"{xa}SignatureTimeStamp", Id=TIMESTAMP_ID)
        etree.SubElement(stamp, f"{ds}CanonicalizationMethod", Algorithm=EXC_C14N)
        etree.SubElement(stamp, f"{xa}EncapsulatedTimeStamp").text = _TIMESTAMP_MARK
        marks.append(_TIMESTAMP_MARK)

    def split(node: etree._Element, *marks: str) -> tuple[bytes, ...]:
        parts, rest = [], c14n(node, exclusive=True)
        for mark in marks:
            head, rest = rest.split(mark.encode())
            parts.append(head)
        return (*parts, rest)

    return _Templates(
        signed_info=split(signed_info, _DIGEST_MARK, _PROPS_DIGEST_MARK),
        signature=split(signature, *marks),
        signed_properties=split(props, _TIME_MARK),
        signature_value=split(value_element, _VALUE_MARK) if timestamped else (),
    )


# Bytes that may stay in the structural skeleton of a body (see _already_canonical).
_NOT_STRUCTURE: Final = bytes(b for b in range(256) if b not in b"<>/ \t\n")
_XML_DECLARATIONS: Final = frozenset(
    f"<?xml version={q}1.0{q} encoding={q}{name}{q}?>".encode() for q in "\"'" for name in ("UTF-8", "utf-8")
)


def _already_canonical(data: bytes, root: etree._Element) -> tuple[memoryview, int] | None:
    """The document's exclusive canonical form when ``data`` already holds it, else None.

    What ``render`` publishes is canonical except for the XML declaration, and proving
    that from the bytes is cheaper than canonicalising the parsed tree again. ``data``
    has been parsed as well-formed XML without a DTD into ``root``. The answer is a
    slice of ``data`` only when all of this holds, and then the slice is byte for byte
    what exclusive c14n gives (W3C Canonical XML 1.0 §1.1, Exclusive XML
    Canonicalization 1.0 §3); ``None`` sends the caller to the canonicaliser:

    - an exact UTF-8 declaration, or none, then only blanks before the root's start tag,
      and only blanks after its end tag (c14n drops both, and the declaration);
    - the root is unprefixed, has no attributes and declares exactly its own namespace,
      an absolute URI (libxml2's c14n refuses a relative one), and its start tag is
      written as c14n writes it;
    - after that start tag: no ``&`` (so no entity or character reference, which c14n
      would expand or rewrite), no carriage return (parsing turns it into a line feed),
      no ``!`` or ``?`` (no comment, CDATA section or processing instruction), no ``=``
      (so no attribute and no namespace declaration);
    - in the skeleton of the body, where only ``< > /`` and blanks are kept, every
      ``<`` is followed directly by ``>`` or ``/>``: no tag holds a blank; there are as
      many ``>`` as ``<``: no ``>`` in text (c14n writes ``&gt;``); and there is one
      end tag more than start tags after the root's, so no element is an empty-element
      tag (c14n writes a start and an end tag).

    ``test_signing`` holds this to lxml's c14n on documents that break each rule.
    """
    start = 0
    if data.startswith(b"<?xml"):
        start = data.find(b"?>") + 2
        if data[:start] not in _XML_DECLARATIONS:
            return None
    if root.prefix is not None or len(root.attrib):
        return None
    qname = etree.QName(root)
    root_tags = _root_tags(qname.localname, qname.namespace)
    if root_tags is None or root.nsmap != ({None: qname.namespace} if qname.namespace else {}):
        return None
    start_tag, end_tag = root_tags
    size = len(data)
    while start < size and data[start] in b" \t\n":
        start += 1
    end = size
    while end > start and data[end - 1] in b" \t\n":
        end -= 1
    if not data.startswith(start_tag, start):
        return None
    body = data[start + len(start_tag) : end]
    if not body.endswith(end_tag) or any(mark in body for mark in (b"&", b"\r", b"!", b"?", b"=")):
        return None
    skeleton = body.translate(None, _NOT_STRUCTURE)
    start_tags, end_tags = skeleton.count(b"<>"), skeleton.count(b"</>")
    opened = skeleton.count(b"<")
    if not (opened == skeleton.count(b">") == start_tags + end_tags and end_tags == start_tags + 1):
        return None
    _refuse_a_signed_document(body, root)
    return memoryview(data)[start:end], end - start - len(end_tag)


_ABSOLUTE_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^&<\"\s]*")


@lru_cache(maxsize=64)
def _root_tags(localname: str, namespace: str | None) -> tuple[bytes, bytes] | None:
    """The root's start and end tag as exclusive c14n writes them, for the shortcut only."""
    end_tag = f"</{localname}>".encode()
    if namespace is None:
        return f"<{localname}>".encode(), end_tag
    if not _ABSOLUTE_URI.fullmatch(namespace):
        return None
    return f'<{localname} xmlns="{namespace}">'.encode(), end_tag


def _refuse_a_signed_document(text: bytes, root: etree._Element) -> None:
    # ``text`` is UTF-8 with no character references in names: without the bytes
    # "Signature" there is no ds:Signature, and the tree need not be walked.
    if b"Signature" in text and next(root.iter(SIGNATURE_TAG), None) is not None:
        raise SigningError("the document already carries a ds:Signature")


def _canonical_form(root: etree._Element) -> tuple[bytes, int]:
    """The exclusive canonical form of the document, and where the root's end tag starts."""
    outside = (*root.itersiblings(preceding=True), *root.itersiblings())
    # Processing instructions outside the root are refused: verifiers disagree on
    # them (xmlsec1 keeps them in the enveloped reference, signxml drops them), and
    # an IVI document has none.
    if any(isinstance(node, etree._ProcessingInstruction) for node in outside):
        raise SigningError("processing instructions outside the root element are not supported")
    try:
        canonical = c14n(root.getroottree(), exclusive=True)
    except etree.C14NError as exc:  # e.g. a relative namespace URI
        raise SigningError(f"the document cannot be canonicalised: {exc}") from exc
    _refuse_a_signed_document(canonical, root)
    prefix = f"{root.prefix}:" if root.prefix else ""
    end_tag = f"</{prefix}{etree.QName(root).localname}>".encode()
    if not canonical.endswith(end_tag):
        raise SigningError("internal: canonical form does not end with the root's end tag")
    return canonical, len(canonical) - len(end_tag)
