"""The seal: enveloped XML-DSig as the EUCARIS set-up manual asks, checked three ways.

Our own verifier, xmlsec1 (an independent implementation, from Debian) and the
published schema must all accept what ``Seal.sign`` produces.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from cli.main import main as coc
from devkit.keys import (
    CERT_FILE,
    KEY_FILE,
    Algorithm,
    generate_dev_seal,
    write_dev_seal,
)
from devkit.samples import generate
from services.render.document import render
from services.signing.seal import (
    DIGEST_SHA256,
    ECDSA_SHA256,
    ENVELOPED,
    EXC_C14N,
    RSA_SHA256,
    Seal,
    SigningError,
    _already_canonical,
    certificate_fingerprint,
    verify,
)
from services.validation.rules import ApprovalTable
from shared.ivi import IviSchema
from shared.xml import DSIG_NS, XmlInputError, load_ivi_schema, parse_bytes, validate

pytestmark = pytest.mark.unit

DS = f"{{{DSIG_NS}}}"
VIN = b"JTAM1C0MPTEST0010"


@pytest.fixture(scope="module", params=["rsa-2048", "ecdsa-p256"])
def key_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development seal written by our own keys module, never a committed key."""
    algorithm: Algorithm = request.param
    out = tmp_path_factory.mktemp(algorithm)
    write_dev_seal(out, algorithm=algorithm)
    return out


@pytest.fixture(scope="module")
def seal(key_dir: Path) -> Seal:
    return Seal.from_pem((key_dir / KEY_FILE).read_bytes(), (key_dir / CERT_FILE).read_bytes())


@pytest.fixture(scope="module")
def signed(seal: Seal, unsigned_specimen: bytes) -> bytes:
    return seal.sign(unsigned_specimen)


@pytest.fixture(scope="module")
def signed_file(signed: bytes, key_dir: Path) -> Path:
    path = key_dir / "signed.xml"
    path.write_bytes(signed)
    return path


XMLSEC1 = shutil.which("xmlsec1")
XMLLINT = shutil.which("xmllint")
needs_xmlsec1 = pytest.mark.skipif(
    XMLSEC1 is None, reason="xmlsec1 is not installed (Debian: apt-get install xmlsec1)"
)


def _xmlsec1_verify(document: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    # --trusted-pem: the key comes from the certificate in KeyInfo, which must chain to
    # this (self-signed) certificate; --enabled-reference-uris empty: only URI="".
    assert XMLSEC1 is not None
    command = [XMLSEC1, "--verify", "--enabled-reference-uris", "empty"]
    return subprocess.run(
        [*command, "--trusted-pem", str(cert), str(document)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _flip_vin(document: bytes) -> bytes:
    assert document.count(VIN) == 1
    return document.replace(VIN, VIN[:-1] + b"1")


def test_signed_specimen_is_valid_against_the_schema_as_published(xsd_path: Path, signed: bytes) -> None:
    assert validate(load_ivi_schema(xsd_path), parse_bytes(signed)) == []


def test_signature_is_the_last_child_of_the_root_with_the_set_up_manual_algorithms(
    seal: Seal, signed: bytes
) -> None:
    root = parse_bytes(signed)
    signature = root[-1]
    assert signature.tag == f"{DS}Signature"
    assert signature.get("Id") is None and len(list(root.iter(f"{DS}Signature"))) == 1

    signed_info = signature.find(f"{DS}SignedInfo")
    assert signed_info is not None
    assert signed_info.find(f"{DS}CanonicalizationMethod").get("Algorithm") == EXC_C14N  # type: ignore[union-attr]
    expected_method = RSA_SHA256 if seal.signature_method == RSA_SHA256 else ECDSA_SHA256
    assert signed_info.find(f"{DS}SignatureMethod").get("Algorithm") == expected_method  # type: ignore[union-attr]
    (reference,) = signed_info.findall(f"{DS}Reference")
    assert reference.get("URI") == ""
    transforms = [t.get("Algorithm") for t in reference.iter(f"{DS}Transform")]
    assert transforms == [ENVELOPED, EXC_C14N]
    assert reference.find(f"{DS}DigestMethod").get("Algorithm") == DIGEST_SHA256  # type: ignore[union-attr]

    embedded = signature.findtext(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert embedded is not None
    assert x509.load_der_x509_certificate(base64.b64decode(embedded)) == seal.certificate


def test_signed_output_is_the_canonical_input_plus_the_signature_and_nothing_else(
    unsigned_specimen: bytes, signed: bytes
) -> None:
    head, _, rest = signed.partition(b"<ds:Signature ")
    tail = rest[rest.index(b"</ds:Signature>") + len(b"</ds:Signature>") :]
    canonical = etree.tostring(parse_bytes(unsigned_specimen).getroottree(), method="c14n", exclusive=True)

    assert head.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert head.split(b"\n", 1)[1] + tail == canonical
    assert tail == b"</InitialVehicleInformation>"
    assert b"<Header>\n\t\t<IviReferenceId>6a2957d3-4a32-41a6-a2d0-50681e0bf5e1" in head


def test_signed_document_verifies_with_the_embedded_and_the_expected_certificate(
    key_dir: Path, seal: Seal, signed: bytes
) -> None:
    result = verify(signed, (key_dir / CERT_FILE).read_bytes())

    assert result.valid, result.reasons
    assert result.fingerprint == seal.fingerprint == certificate_fingerprint(seal.certificate)
    assert result.signature_method == seal.signature_method


def test_rsa_signing_is_deterministic_so_redelivery_gives_the_same_bytes(
    unsigned_specimen: bytes,
) -> None:
    dev = generate_dev_seal("rsa-2048")
    seal = Seal.from_pem(dev.key_pem, dev.cert_pem)
    assert seal.sign(unsigned_specimen) == seal.sign(unsigned_specimen)


OTHER_DOCUMENTS = {
    "prefixed-root": b'<v:Root xmlns:v="urn:v" xmlns:unused="urn:u"><v:a>1</v:a></v:Root>',
    "prolog-comment": b'<?xml version="1.0"?>\n<!-- c -->\n<r>\n  <a/>\n</r>',
    "latin-1": '<?xml version="1.0" encoding="ISO-8859-1"?><r>\u00e9t\u00e9</r>'.encode("latin-1"),
    "attributes-and-escapes": b'<r b="2" a="1&#9;&quot;"><x>&lt;&amp;&gt;&#13;</x><![CDATA[<y>]]></r>',
    "ds-prefix-taken": b'<r xmlns:ds="urn:not-dsig"><ds:a>1</ds:a></r>',
}


@pytest.mark.parametrize("document", OTHER_DOCUMENTS.values(), ids=OTHER_DOCUMENTS.keys())
def test_documents_of_any_shape_are_sealed_as_the_last_child_and_verify(document: bytes, seal: Seal) -> None:
    signed = seal.sign(document)

    result = verify(signed)
    assert result.valid, result.reasons
    assert parse_bytes(signed)[-1].tag == f"{DS}Signature"


@needs_xmlsec1
@pytest.mark.parametrize("document", OTHER_DOCUMENTS.values(), ids=OTHER_DOCUMENTS.keys())
def test_xmlsec1_accepts_documents_of_any_shape(
    document: bytes, seal: Seal, key_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "doc.xml"
    path.write_bytes(seal.sign(document))

    result = _xmlsec1_verify(path, key_dir / CERT_FILE)

    assert result.returncode == 0, result.stderr


def test_one_byte_change_in_the_content_fails_verification(signed: bytes) -> None:
    result = verify(_flip_vin(signed))

    assert not result.valid
    assert any("digest differs" in reason for reason in result.reasons)


def test_added_whitespace_fails_verification(signed: bytes) -> None:
    result = verify(signed.replace(b"<Header>", b"<Header> ", 1))
    assert not result.valid


def test_one_byte_change_in_the_signature_value_fails_verification(signed: bytes) -> None:
    start = signed.index(b"SignatureValue>") + len(b"SignatureValue>")
    replacement = b"A" if signed[start : start + 1] != b"A" else b"B"
    tampered = signed[:start] + replacement + signed[start + 1 :]

    result = verify(tampered)

    assert not result.valid
    assert any("SignatureValue does not verify" in reason for reason in result.reasons)


def test_verify_rejects_a_document_sealed_with_another_certificate(signed: bytes) -> None:
    other = generate_dev_seal("rsa-2048")

    result = verify(signed, other.cert_pem)

    assert not result.valid
    assert any("not the expected one" in reason for reason in result.reasons)


def test_verify_reports_an_unsigned_document(unsigned_specimen: bytes) -> None:
    result = verify(unsigned_specimen)
    assert not result.valid and result.reasons == ("expected one ds:Signature, found 0",)


def test_verify_reports_the_reindented_official_specimen_as_broken(specimen_bytes: bytes) -> None:
    # The published specimen was re-indented after signing (ivi2/README.md).
    result = verify(specimen_bytes)
    assert not result.valid and result.reasons


def test_a_fresh_signature_that_does_not_verify_never_leaves_sign(
    unsigned_specimen: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = generate_dev_seal("rsa-2048")
    seal = Seal.from_pem(dev.key_pem, dev.cert_pem)
    monkeypatch.setattr(Seal, "_sign_bytes", lambda self, data: bytes(256))  # a faulty signer

    with pytest.raises(SigningError, match="fresh signature failed verification"):
        seal.sign(unsigned_specimen)


def test_sign_refuses_a_document_that_is_already_signed(seal: Seal, signed: bytes) -> None:
    with pytest.raises(SigningError, match="already carries"):
        seal.sign(signed)


def test_sign_refuses_a_signed_document_in_utf16_too(seal: Seal, signed: bytes) -> None:
    text = signed.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)
    with pytest.raises(SigningError, match="already carries"):
        seal.sign(text.encode("utf-16"))


def test_sign_refuses_a_signature_that_is_itself_in_canonical_form(seal: Seal) -> None:
    """A bare ds:Signature as the root passes every byte rule of the canonical shortcut."""
    document = f'<Signature xmlns="{DSIG_NS}"><SignatureValue>AA</SignatureValue></Signature>'.encode()

    with pytest.raises(SigningError, match="already carries"):
        _already_canonical(document, parse_bytes(document))
    with pytest.raises(SigningError, match="already carries"):
        seal.sign(document)


def test_sign_refuses_a_document_with_a_dtd(seal: Seal) -> None:
    with pytest.raises(XmlInputError, match="DTD"):
        seal.sign(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')


def test_seal_refuses_a_certificate_of_another_key() -> None:
    one, two = generate_dev_seal("rsa-2048"), generate_dev_seal("rsa-2048")
    with pytest.raises(SigningError, match="does not belong"):
        Seal.from_pem(one.key_pem, two.cert_pem)


def test_dev_keys_are_files_the_signer_accepts_with_seal_key_usage(key_dir: Path) -> None:
    key_path, cert_path = key_dir / KEY_FILE, key_dir / CERT_FILE
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    Seal.from_pem(key_path.read_bytes(), cert_path.read_bytes())

    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    assert "CN=Development eCoC Seal" in certificate.subject.rfc4514_string()


def test_dev_keys_are_not_overwritten_without_force(tmp_path: Path) -> None:
    first = write_dev_seal(tmp_path)
    with pytest.raises(SigningError, match="already exist"):
        write_dev_seal(tmp_path)
    assert (tmp_path / CERT_FILE).read_bytes() == first.cert_pem

    second = write_dev_seal(tmp_path, force=True)
    assert (tmp_path / CERT_FILE).read_bytes() == second.cert_pem != first.cert_pem
    assert stat.S_IMODE(os.stat(tmp_path / KEY_FILE).st_mode) == 0o600


@needs_xmlsec1
def test_xmlsec1_accepts_the_signed_document(signed_file: Path, key_dir: Path) -> None:
    result = _xmlsec1_verify(signed_file, key_dir / CERT_FILE)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stderr + result.stdout


@needs_xmlsec1
def test_xmlsec1_rejects_a_changed_document(signed: bytes, key_dir: Path) -> None:
    tampered = key_dir / "tampered.xml"
    tampered.write_bytes(_flip_vin(signed))
    assert _xmlsec1_verify(tampered, key_dir / CERT_FILE).returncode != 0


@pytest.mark.skipif(XMLLINT is None, reason="xmllint is not installed (Debian: libxml2-utils)")
def test_xmllint_validates_the_signed_document(signed_file: Path, xsd_path: Path) -> None:
    assert XMLLINT is not None
    result = subprocess.run(
        [XMLLINT, "--noout", "--nonet", "--schema", str(xsd_path), str(signed_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_coc_verify_exits_zero_for_a_valid_sealed_document(
    signed_file: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert coc(["verify", str(signed_file), "--cert", str(key_dir / CERT_FILE)]) == 0
    assert "signature verifies" in capsys.readouterr().out


def test_coc_verify_exits_one_with_reasons_for_a_changed_document(
    signed: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "changed.xml"
    path.write_bytes(_flip_vin(signed))

    assert coc(["verify", str(path)]) == 1
    assert "digest differs" in capsys.readouterr().out


def test_coc_verify_exits_one_for_an_unsigned_document_invalid_as_published(
    unsigned_specimen: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "unsigned.xml"
    path.write_bytes(unsigned_specimen)

    assert coc(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "schema: line" in out and "Signature" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"not xml at all", "not well-formed XML at line 1"),
        (b"<!DOCTYPE a><a/>", "DTD"),
    ],
    ids=["missing", "not-xml", "dtd"],
)
def test_coc_verify_gives_one_line_for_bad_input(
    content: bytes | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input.xml"
    if content is not None:
        path.write_bytes(content)

    assert coc(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "document",
    [b"<?style x?><r><a>1</a></r>", b"<r><a>1</a></r><?style x?>"],
    ids=["before-root", "after-root"],
)
def test_processing_instruction_outside_the_root_is_refused(document: bytes, seal: Seal) -> None:
    with pytest.raises(SigningError, match="processing instructions outside the root"):
        seal.sign(document)


# Documents near the canonical form, each breaking one rule of the shortcut that
# recognises canonical input (or none). Whatever the shortcut answers must be what
# lxml's exclusive c14n gives; CANONICAL_SHAPES are the ones it must recognise.
_ROOT = b'<r xmlns="urn:r">'
_BODY = b"<a>x y</a><b>\t/\n</b><c></c><d><e>\xc3\xa9t\xc3\xa9 \"'</e></d></r>"
NEAR_CANONICAL = {
    "canonical": _ROOT + _BODY,
    "declaration-and-blanks": b"<?xml version='1.0' encoding='UTF-8'?>\n" + _ROOT + _BODY + b"\n\n",
    "double-quoted-declaration": b'<?xml version="1.0" encoding="utf-8"?>' + _ROOT + _BODY,
    "no-namespace": b"<r>" + _BODY,
    "standalone-declaration": b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + _ROOT + _BODY,
    "latin-1-declaration": b'<?xml version="1.0" encoding="ISO-8859-1"?><r xmlns="urn:r"><a>x</a></r>',
    "byte-order-mark": b"\xef\xbb\xbf" + _ROOT + _BODY,
    "root-single-quotes": b"<r xmlns='urn:r'>" + _BODY,
    "root-blank-before-end": b'<r xmlns="urn:r" >' + _BODY,
    "root-unused-namespace": b'<r xmlns="urn:r" xmlns:u="urn:u">' + _BODY,
    "root-attribute": b'<r xmlns="urn:r" id="1">' + _BODY,
    "root-prefixed": b'<p:r xmlns:p="urn:r"><p:a>x</p:a></p:r>',
    "root-empty-element-tag": b'<r xmlns="urn:r"/>',
    "blank-in-start-tag": _ROOT + _BODY.replace(b"<a>", b"<a >"),
    "newline-in-end-tag": _ROOT + _BODY.replace(b"</b>", b"</b\n>"),
    "empty-element-tag": _ROOT + _BODY.replace(b"<c></c>", b"<c/>"),
    "empty-element-tag-with-blank": _ROOT + _BODY.replace(b"<c></c>", b"<c />"),
    # A comment's skeleton looks like a start tag: it must not balance an empty-element tag.
    "comment-and-empty-element-tag": _ROOT + _BODY.replace(b"<c></c>", b"<!--n--><c/>"),
    "processing-instruction-and-empty-element-tag": _ROOT + _BODY.replace(b"<c></c>", b"<?p?><c/>"),
    "gt-in-text": _ROOT + _BODY.replace(b"x y", b"x>y"),
    "gt-reference": _ROOT + _BODY.replace(b"x y", b"x&gt;y"),
    "amp-reference": _ROOT + _BODY.replace(b"x y", b"x&amp;y"),
    "character-reference": _ROOT + _BODY.replace(b"x y", b"x&#65;y"),
    "carriage-return": _ROOT + _BODY.replace(b"x y", b"x\r\ny"),
    "cdata": _ROOT + _BODY.replace(b"x y", b"<![CDATA[x y]]>"),
    "comment-after-root": _ROOT + _BODY + b"<!--n-->",
    "processing-instruction-after-root": _ROOT + _BODY + b"<?p?>",
    "attribute": _ROOT + _BODY.replace(b"<a>", b'<a k="v">'),
    "redundant-namespace": _ROOT + _BODY.replace(b"<a>", b'<a xmlns="urn:r">'),
    "other-namespace": _ROOT + _BODY.replace(b"<a>x y</a>", b'<p:a xmlns:p="urn:p">x y</p:a>'),
    "equals-in-text": _ROOT + _BODY.replace(b"x y", b"x=y"),
    "xml-prefixed-element": _ROOT + _BODY.replace(b"<a>x y</a>", b"<xml:a>x y</xml:a>"),
    "empty-namespace": b'<r xmlns="">' + _BODY,
}
CANONICAL_SHAPES = {
    "canonical",
    "declaration-and-blanks",
    "double-quoted-declaration",
    "no-namespace",
    "xml-prefixed-element",
}


@pytest.mark.parametrize("name", NEAR_CANONICAL)
def test_canonical_input_is_recognised_only_when_it_is_what_c14n_gives(name: str) -> None:
    document = NEAR_CANONICAL[name]
    root = parse_bytes(document)
    expected = etree.tostring(root.getroottree(), method="c14n", exclusive=True)

    found = _already_canonical(document, root)

    assert (found is not None) == (name in CANONICAL_SHAPES)
    if found is not None:
        canonical, cut = found
        assert bytes(canonical) == expected
        assert expected[cut:] == b"</r>"


def test_a_relative_namespace_is_refused_not_taken_as_canonical(seal: Seal) -> None:
    """Canonical XML leaves relative namespace URIs undefined, and libxml2's c14n fails on them."""
    document = b'<r xmlns="relative"><a>x</a></r>'

    assert _already_canonical(document, parse_bytes(document)) is None
    with pytest.raises(SigningError, match="cannot be canonicalised"):
        seal.sign(document)


def test_sealing_gives_the_same_bytes_for_canonical_and_other_forms_of_one_document() -> None:
    dev = generate_dev_seal("rsa-2048")  # RSA PKCS#1 v1.5 is deterministic; ECDSA is not
    seal = Seal.from_pem(dev.key_pem, dev.cert_pem)
    canonical = NEAR_CANONICAL["canonical"]
    other = NEAR_CANONICAL["blank-in-start-tag"].replace(b"<c></c>", b"<c/>")

    assert seal.sign(other) == seal.sign(canonical)
    assert verify(seal.sign(canonical)).valid


def test_rendered_documents_are_recognised_as_canonical(xsd_path: Path) -> None:
    """The signing service gets its input from render: that must be the cheap path."""
    schema = IviSchema.load(xsd_path)
    samples = generate(60, seed=11, defect_share=0.0)
    table = ApprovalTable.of(schema, samples.approvals)
    for build in samples.builds:
        approval = table.get(build.approval.key)
        assert approval is not None
        document = render(build, approval, version_number=1, schema=schema)
        root = parse_bytes(document)
        found = _already_canonical(document, root)
        assert found is not None, build.vin
        assert bytes(found[0]) == etree.tostring(root.getroottree(), method="c14n", exclusive=True)
