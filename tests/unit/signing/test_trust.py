"""Who a seal is trusted from, and which certificates may seal at all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cli.main import main as coc
from devkit.keys import generate_dev_seal
from services.launch import main as launch
from services.signing.seal import Seal, SigningError
from services.signing.subscribers import expiry_warning
from shared.contracts import Owner, Severity
from shared.xmldsig import trusted_by

pytestmark = pytest.mark.unit

NOW = dt.datetime.now(dt.UTC)


def certificate(
    key: rsa.RSAPrivateKey,
    *,
    name: str = "Seal",
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None = None,
    start: dt.datetime = NOW - dt.timedelta(days=1),
    end: dt.datetime = NOW + dt.timedelta(days=365),
    usage: dict[str, bool] | None = None,
    ca: bool = False,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        builder = builder.add_extension(x509.KeyUsage(**{**flags, **usage}), critical=True)
    return builder.sign(signer, hashes.SHA256())


def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING = {"digital_signature": True, "content_commitment": True}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ({"end": NOW - dt.timedelta(days=1)}, "expired on"),
        ({"start": NOW + dt.timedelta(days=3)}, "not valid before"),
        ({"usage": {"key_encipherment": True}}, "allows no signature"),
        ({"usage": None}, "states no key usage"),
    ],
    ids=["expired", "not-yet-valid", "encipherment-only", "no-key-usage"],
)
def test_a_seal_refuses_a_certificate_that_may_not_seal_now(kind: dict[str, object], message: str) -> None:
    private = key()
    options = {"usage": SIGNING, **kind}
    cert = certificate(private, **options)  # type: ignore[arg-type]
    with pytest.raises(SigningError, match=message):
        Seal(key=private, certificate=cert)


def test_a_seal_with_a_signing_certificate_seals_and_warns_integration_in_its_last_30_days() -> None:
    private = key()
    Seal(key=private, certificate=certificate(private, usage=SIGNING))  # accepted
    assert expiry_warning(Seal(key=private, certificate=certificate(private, usage=SIGNING))) == ()
    ending = Seal(
        key=private, certificate=certificate(private, usage=SIGNING, end=NOW + dt.timedelta(days=20))
    )
    (warning,) = expiry_warning(ending)
    assert (warning.code, warning.owner, warning.severity) == (
        "SEAL_CERT_EXPIRING",
        Owner.INTEGRATION,
        Severity.WARNING,
    )


def test_a_signer_is_trusted_as_an_anchor_itself_or_as_issued_by_one() -> None:
    ca_key, seal_key = key(), key()
    ca = certificate(ca_key, name="Manufacturer CA", ca=True, usage={"key_cert_sign": True})
    issued = certificate(seal_key, issuer=(ca.subject, ca_key), usage=SIGNING)
    stranger = certificate(key(), usage=SIGNING)
    assert trusted_by(issued, [ca], NOW) is None
    assert trusted_by(issued, [issued], NOW) is None
    assert (
        trusted_by(stranger, [ca], NOW)
        == "the signer's certificate is neither a trust anchor nor issued by one"
    )
    assert "no trust anchor given" in (trusted_by(issued, [], NOW) or "")


def _seal_file(tmp_path: Path, document: bytes) -> tuple[Path, Path]:
    dev = generate_dev_seal("rsa-2048")
    seal = Seal.from_pem(dev.key_pem, dev.cert_pem)
    path, cert = tmp_path / "signed.xml", tmp_path / "seal.pem"
    path.write_bytes(seal.sign(document))
    cert.write_bytes(dev.cert_pem)
    return path, cert


def test_coc_verify_without_a_trust_anchor_says_intact_but_not_trusted_and_exits_one(
    unsigned_specimen: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COC_TRUST_DIR", raising=False)
    path, cert = _seal_file(tmp_path, unsigned_specimen)
    assert coc(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "signer NOT trusted: no trust anchor given" in out
    assert "signature intact; signer not trusted" in out
    assert "signer: CN=Development eCoC Seal" in out and "key usage digitalSignature, nonRepudiation" in out

    assert coc(["verify", str(path), "--cert", str(cert)]) == 0
    assert "signer trusted" in capsys.readouterr().out


def test_coc_verify_trusts_the_certificates_of_the_trust_folder_and_no_forged_one(
    unsigned_specimen: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, cert = _seal_file(tmp_path, unsigned_specimen)
    (tmp_path / "other").mkdir()
    forged, _ = _seal_file(tmp_path / "other", unsigned_specimen)
    folder = tmp_path / "trust"
    folder.mkdir()
    (folder / "seal.pem").write_bytes(cert.read_bytes())
    monkeypatch.setenv("COC_TRUST_DIR", str(folder))
    assert coc(["verify", str(path)]) == 0
    capsys.readouterr()
    assert coc(["verify", str(forged)]) == 1  # a fresh key's seal verifies, but its signer is nobody we trust
    assert "neither a trust anchor nor issued by one" in capsys.readouterr().out


def test_the_signing_service_refuses_to_start_with_an_expired_seal_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    private = key()
    expired = certificate(
        private, usage=SIGNING, start=NOW - dt.timedelta(days=400), end=NOW - dt.timedelta(days=2)
    )
    key_file, cert_file = tmp_path / "seal.key", tmp_path / "seal.crt"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_file.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("COC_SEAL_KEY", str(key_file))
    monkeypatch.setenv("COC_SEAL_CERT", str(cert_file))
    assert launch(["signing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "signing cannot start: seal: the seal certificate expired on" in err[0]
