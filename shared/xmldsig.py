"""Checking an enveloped XML-DSig seal from its bytes: the verifier every part of the product shares.

Signing (``services.signing.seal``) makes seals; the command line, the
workspace's release evidence and the tests check them. The check accepts only
what the EUCARIS set-up manual asks for (exclusive c14n, rsa-sha256 or, as an
option, ecdsa-sha256, SHA-256 digests, one ``Reference URI=""`` with the
enveloped-signature transform, the certificate in KeyInfo) and asks signxml for
a second opinion. It reads no file and holds no key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from shared.xml import DSIG_NS, parse_bytes

EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
XADES_NS: Final = "http://uri.etsi.org/01903/v1.3.2#"
SIGNED_PROPERTIES_TYPE: Final = "http://uri.etsi.org/01903#SignedProperties"
C14N_10: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
DIGEST_SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"

_DS = f"{{{DSIG_NS}}}"
SIGNATURE_TAG: Final = f"{_DS}Signature"
_EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
_PKCS1V15: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()


class CertificateError(ValueError):
    """A certificate given to check against cannot be read."""


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, lower-case hex: how archive and logs name a seal."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def certificate_refusal(certificate: x509.Certificate, now: dt.datetime) -> str | None:
    """Why ``certificate`` cannot seal now (not yet valid, expired, no signing key usage); None when it can."""
    if now < certificate.not_valid_before_utc:
        return f"the seal certificate is not valid before {certificate.not_valid_before_utc.isoformat()}"
    if now > certificate.not_valid_after_utc:
        return f"the seal certificate expired on {certificate.not_valid_after_utc.isoformat()}"
    usage = key_usage(certificate)
    if usage is None:
        return "the seal certificate states no key usage; a seal needs digitalSignature or nonRepudiation"
    if not (usage.digital_signature or usage.content_commitment):
        return "the seal certificate's key usage allows no signature (digitalSignature or nonRepudiation)"
    return None


def key_usage(certificate: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def key_usage_text(certificate: x509.Certificate) -> str:
    """The key usages a certificate states, as RFC 5280 names them."""
    usage = key_usage(certificate)
    if usage is None:
        return "none stated"
    names = {
        "digital_signature": "digitalSignature",
        "content_commitment": "nonRepudiation",
        "key_encipherment": "keyEncipherment",
        "data_encipherment": "dataEncipherment",
        "key_agreement": "keyAgreement",
        "key_cert_sign": "keyCertSign",
        "crl_sign": "cRLSign",
    }
    return ", ".join(name for attr, name in names.items() if getattr(usage, attr)) or "none"


def trusted_by(
    certificate: x509.Certificate, anchors: Sequence[x509.Certificate], now: dt.datetime
) -> str | None:
    """Why ``certificate`` is not trusted by ``anchors`` (itself one of them, or issued by one); None if it is."""
    if not anchors:
        return "no trust anchor given: the signature is intact, but nothing says who the signer is"
    for anchor in anchors:
        if anchor == certificate:
            return None
        try:
            certificate.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if anchor.not_valid_before_utc <= now <= anchor.not_valid_after_utc:
            return None
    return "the signer's certificate is neither a trust anchor nor issued by one"


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking one signed document; ``reasons`` says why it failed."""

    valid: bool
    reasons: tuple[str, ...] = ()
    certificate: x509.Certificate | None = None
    signature_method: str | None = None

    @property
    def fingerprint(self) -> str | None:
        return certificate_fingerprint(self.certificate) if self.certificate else None


def c14n(
    node: etree._Element | etree._ElementTree,
    *,
    exclusive: bool,
    prefixes: Sequence[str] | None = None,
) -> bytes:
    # Comments are left out: a same-document URI="" reference and a SignedInfo are
    # canonicalised without comments (XML-DSig 1.1 §4.4.3.3).
    return etree.tostring(
        node,
        method="c14n",
        exclusive=exclusive,
        with_comments=False,
        inclusive_ns_prefixes=list(prefixes) if prefixes else None,
    )


def check_signature_value(public_key: object, method: str, value: bytes, signed_info: bytes) -> str | None:
    """None when ``value`` is a valid signature of ``signed_info``; else the reason."""
    try:
        if method == RSA_SHA256 and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(value, signed_info, _PKCS1V15, _SHA256)
            return None
        if method == ECDSA_SHA256 and isinstance(public_key, ec.EllipticCurvePublicKey):
            half = (public_key.curve.key_size + 7) // 8
            if len(value) != 2 * half:
                return f"ECDSA signature value has {len(value)} bytes, expected {2 * half}"
            der = encode_dss_signature(
                int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big")
            )
            public_key.verify(der, signed_info, ec.ECDSA(hashes.SHA256()))
            return None
    except InvalidSignature:
        return "SignatureValue does not verify with the certificate's public key"
    return f"certificate key does not fit the signature method {method}"


def verify(signed_xml: bytes, cert_pem: bytes | None = None, *, second_opinion: bool = True) -> VerifyResult:
    """Check an enveloped seal the way an independent verifier does, from the bytes.

    The signature must verify with the certificate embedded in KeyInfo; when
    ``cert_pem`` is given, the embedded certificate must be that certificate (the
    embedded one alone proves integrity, not who sealed). Only the algorithms the
    EUCARIS set-up manual allows are accepted. Raises ``XmlInputError`` when the bytes
    are not acceptable XML; every other failure is a reason in the result. With
    ``second_opinion`` a signature that passes is checked by signxml as well (an
    audit of many certificates may leave that out, for speed).
    """
    root = parse_bytes(signed_xml)
    signatures = list(root.iter(SIGNATURE_TAG))
    if len(signatures) != 1:
        return VerifyResult(False, (f"expected one ds:Signature, found {len(signatures)}",))
    signature = signatures[0]
    if signature.getparent() is not root:
        return VerifyResult(False, ("ds:Signature is not a child of the root element",))
    try:
        parts = _SignatureParts.read(signature)
    except _Unsupported as exc:
        return VerifyResult(False, (str(exc),))

    reasons: list[str] = []
    if cert_pem is not None:
        expected = _load_expected_certificate(cert_pem)
        if expected != parts.certificate:
            reasons.append(
                "embedded certificate is not the expected one "
                f"(embedded sha256 {certificate_fingerprint(parts.certificate)}, "
                f"expected {certificate_fingerprint(expected)})"
            )
    signed_info_c14n = c14n(parts.signed_info, exclusive=True, prefixes=parts.si_prefixes)
    reason = check_signature_value(
        parts.certificate.public_key(), parts.method, parts.value, signed_info_c14n
    )
    if reason:
        reasons.append(reason)
    props = parts.properties
    if props is not None:
        signed_props = c14n(props.element, exclusive=props.exclusive, prefixes=props.prefixes)
        if not hmac.compare_digest(hashlib.sha256(signed_props).digest(), props.digest):
            reasons.append("SignedProperties digest differs: the signing time or certificate changed")
        reasons.extend(_signing_certificate_reasons(props.element, parts.certificate))
    _apply_enveloped_transform(signature)
    document = c14n(root.getroottree(), exclusive=parts.ref_exclusive, prefixes=parts.ref_prefixes)
    if not hmac.compare_digest(hashlib.sha256(document).digest(), parts.digest):
        reasons.append("reference digest differs: the document changed after it was signed")
    if not reasons and second_opinion:
        reasons.extend(_signxml_reasons(signed_xml, parts.certificate, 1 if props is None else 2))
    return VerifyResult(not reasons, tuple(reasons), parts.certificate, parts.method)


def _signing_certificate_reasons(props: etree._Element, certificate: x509.Certificate) -> list[str]:
    """XAdES SigningCertificateV2 must name the certificate in KeyInfo (its SHA-256 digest)."""
    xa = f"{{{XADES_NS}}}"
    digests = props.findall(f"{xa}SignedSignatureProperties/{xa}SigningCertificateV2/{xa}Cert/{xa}CertDigest")
    der_sha256 = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()
    for digest in digests:
        method = digest.find(f"{_DS}DigestMethod")
        value = digest.find(f"{_DS}DigestValue")
        if (
            method is not None
            and method.get("Algorithm") == DIGEST_SHA256
            and value is not None
            and hmac.compare_digest(_b64(value), der_sha256)
        ):
            return []
    return ["XAdES SigningCertificateV2 does not name the certificate in KeyInfo"]


def _signxml_reasons(signed_xml: bytes, certificate: x509.Certificate, references: int = 1) -> list[str]:
    """A second opinion from signxml's verifier, the project's XML-DSig library.

    Signing builds the signature itself for speed (one parse, one
    canonicalisation); verifying it with an independent implementation
    restricted to the set-up manual's algorithms catches any mistake that
    code and the checks above would share.
    """
    from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier
    from signxml.exceptions import SignXMLException

    config = SignatureConfiguration(
        signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    try:
        XMLVerifier().verify(
            signed_xml, x509_cert=cert_pem, expect_config=config, expect_references=references
        )
    except SignXMLException as exc:
        return [f"signxml: {exc}"]
    return []


def _load_expected_certificate(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise CertificateError(f"the expected certificate is not a PEM certificate: {exc}") from exc


class _Unsupported(Exception):
    """The Signature is malformed or uses what the set-up manual does not allow."""


@dataclass(frozen=True)
class _PropertiesReference:
    """The XAdES SignedProperties a Reference points at, how they are canonicalised, their digest."""

    element: etree._Element
    exclusive: bool
    prefixes: tuple[str, ...]
    digest: bytes


@dataclass(frozen=True)
class _SignatureParts:
    properties: _PropertiesReference | None
    signed_info: etree._Element
    si_prefixes: tuple[str, ...]
    method: str
    ref_exclusive: bool
    ref_prefixes: tuple[str, ...]
    digest: bytes
    value: bytes
    certificate: x509.Certificate

    @classmethod
    def read(cls, signature: etree._Element) -> _SignatureParts:
        signed_info = _one(signature, "SignedInfo")
        c14n_method = _one(signed_info, "CanonicalizationMethod")
        if c14n_method.get("Algorithm") != EXC_C14N:
            raise _Unsupported(f"CanonicalizationMethod {c14n_method.get('Algorithm')} is not exclusive c14n")
        method = _one(signed_info, "SignatureMethod").get("Algorithm")
        if method not in (RSA_SHA256, ECDSA_SHA256):
            raise _Unsupported(f"SignatureMethod {method} is not rsa-sha256 or ecdsa-sha256")
        references = signed_info.findall(f"{_DS}Reference")
        documents = [r for r in references if r.get("URI") == ""]
        props = [r for r in references if r.get("Type") == SIGNED_PROPERTIES_TYPE]
        if len(documents) != 1 or len(props) > 1 or len(references) != len(documents) + len(props):
            raise _Unsupported(
                'expected one Reference with URI="" (the whole document) and at most one to the '
                "XAdES SignedProperties"
            )
        reference = documents[0]
        ref_exclusive, ref_prefixes = _referencec14n(reference)
        digest_method = _one(reference, "DigestMethod").get("Algorithm")
        if digest_method != DIGEST_SHA256:
            raise _Unsupported(f"DigestMethod {digest_method} is not SHA-256")
        certificates = signature.findall(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")
        if not certificates:
            raise _Unsupported("KeyInfo carries no X509Certificate")
        try:
            certificate = x509.load_der_x509_certificate(_b64(certificates[0]))
        except ValueError as exc:
            raise _Unsupported(f"X509Certificate cannot be read: {exc}") from exc
        return cls(
            properties=_properties_reference(signature, props[0]) if props else None,
            signed_info=signed_info,
            si_prefixes=_prefix_list(c14n_method),
            method=method,
            ref_exclusive=ref_exclusive,
            ref_prefixes=ref_prefixes,
            digest=_b64(_one(reference, "DigestValue")),
            value=_b64(_one(signature, "SignatureValue")),
            certificate=certificate,
        )


def _properties_reference(signature: etree._Element, reference: etree._Element) -> _PropertiesReference:
    """The SignedProperties inside this Signature that ``reference`` names by ``#Id``."""
    uri = reference.get("URI") or ""
    wanted = uri[1:] if uri.startswith("#") else None
    found = [node for node in signature.iter(f"{{{XADES_NS}}}SignedProperties") if node.get("Id") == wanted]
    if wanted is None or len(found) != 1:
        raise _Unsupported(
            f"the SignedProperties Reference {uri!r} names no one SignedProperties of this Signature"
        )
    transforms = reference.findall(f"{_DS}Transforms/{_DS}Transform")
    algorithms = [t.get("Algorithm") for t in transforms]
    if algorithms not in ([], [EXC_C14N], [C14N_10]):
        raise _Unsupported(f"unsupported transforms of the SignedProperties Reference {algorithms}")
    digest_method = _one(reference, "DigestMethod").get("Algorithm")
    if digest_method != DIGEST_SHA256:
        raise _Unsupported(f"DigestMethod {digest_method} is not SHA-256")
    exclusive = algorithms == [EXC_C14N]
    return _PropertiesReference(
        found[0],
        exclusive,
        _prefix_list(transforms[0]) if exclusive else (),
        _b64(_one(reference, "DigestValue")),
    )


def _referencec14n(reference: etree._Element) -> tuple[bool, tuple[str, ...]]:
    """Which canonicalisation turns the referenced node-set into octets.

    Accepted: enveloped-signature, optionally followed by exclusive or inclusive c14n.
    Without an explicit one, XML-DSig 1.1 §4.4.3.2 applies Canonical XML 1.0 (this is
    how the published specimen is signed).
    """
    transforms = reference.findall(f"{_DS}Transforms/{_DS}Transform")
    algorithms = [t.get("Algorithm") for t in transforms]
    if not algorithms or algorithms[0] != ENVELOPED:
        raise _Unsupported("the Reference lacks the enveloped-signature transform")
    if algorithms[1:] == []:
        return False, ()
    if algorithms[1:] == [EXC_C14N]:
        return True, _prefix_list(transforms[1])
    if algorithms[1:] == [C14N_10]:
        return False, ()
    raise _Unsupported(f"unsupported transforms {algorithms}")


def _prefix_list(method: etree._Element) -> tuple[str, ...]:
    # Exclusive c14n §3: InclusiveNamespaces PrefixList names prefixes to treat inclusively.
    inclusive = method.find(f"{{{_EXC_C14N_NS}}}InclusiveNamespaces")
    if inclusive is None:
        return ()
    return tuple(inclusive.get("PrefixList", "").split())


def _one(parent: etree._Element, local: str) -> etree._Element:
    found = parent.findall(f"{_DS}{local}")
    if len(found) != 1:
        raise _Unsupported(f"expected one ds:{local} in ds:{etree.QName(parent).localname}")
    return found[0]


def _b64(element: etree._Element) -> bytes:
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except binascii.Error as exc:
        raise _Unsupported(f"ds:{etree.QName(element).localname} is not base64") from exc


def _apply_enveloped_transform(signature: etree._Element) -> None:
    """Remove the Signature element and nothing else (XML-DSig 1.1 §6.6.4).

    lxml keeps the text after an element as its ``tail``; that text belongs to the
    parent, so it is handed to the previous sibling (or the parent) before removal.
    """
    parent = signature.getparent()
    assert parent is not None
    if signature.tail:
        previous = signature.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + signature.tail
        else:
            parent.text = (parent.text or "") + signature.tail
    parent.remove(signature)
