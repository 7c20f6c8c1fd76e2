"""XAdES baseline T: a real local TSA (`openssl ts -reply` behind a small HTTP front written here).

The seal carries an RFC 3161 token over its canonical SignatureValue; EU DSS 6.4 finds
XAdES-BASELINE-T and TOTAL_PASSED with the seal's and the TSA's certificates as anchors;
rfc3161-client checks the token independently; a TSA that is away makes sealing fail
with a transient fault (the record waits) and never yields a document without a timestamp.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xmlschema
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import TimeStampResponse, VerifierBuilder, decode_timestamp_response

from devkit.keys import generate_dev_seal
from services.signing.adapters.keys import SealHolder
from services.signing.adapters.tsa import TimestampUnavailable, Tsa
from services.signing.seal import Seal, SigningError, verify
from shared.xml import DSIG_NS, load_ivi_schema, parse_bytes, validate
from shared.xmldsig import EXC_C14N, XADES_NS, c14n
from tests.unit.signing.test_dss import dss

pytestmark = pytest.mark.unit

TSA_CONFIG = """
[tsa]
default_tsa = local
[local]
dir = {folder}
serial = {folder}/serial
crypto_device = builtin
signer_cert = {folder}/tsa.crt
signer_key = {folder}/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def tsa_certificate(folder: Path) -> bytes:
    """A self-issued TSA certificate (its own root) with the critical id-kp-timeStamping usage."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local Test TSA")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "tsa.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "tsa.crt").write_bytes(pem)
    return pem


@dataclass
class LocalTsa:
    folder: Path
    cert_pem: bytes
    server: http.server.ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsa"

    def start(self) -> None:
        folder, lock = self.folder, threading.Lock()

        class Front(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:  # openssl ts keeps its serial in a file
                    (folder / "query.tsq").write_bytes(query)
                    made = subprocess.run(
                        [
                            "openssl",
                            "ts",
                            "-reply",
                            "-config",
                            str(folder / "tsa.cnf"),
                            "-queryfile",
                            str(folder / "query.tsq"),
                            "-out",
                            str(folder / "reply.tsr"),
                        ],
                        capture_output=True,
                        check=False,
                        timeout=30,
                    )
                    reply = (folder / "reply.tsr").read_bytes() if made.returncode == 0 else b""
                self.send_response(200 if reply else 500)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Front)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None


@pytest.fixture(scope="module")
def local_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    folder = tmp_path_factory.mktemp("tsa")
    pem = tsa_certificate(folder)
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(TSA_CONFIG.format(folder=folder))
    tsa = LocalTsa(folder, pem)
    tsa.start()
    yield tsa
    if tsa.server is not None:
        tsa.stop()


@pytest.fixture(scope="module")
def dev() -> tuple[bytes, bytes]:
    made = generate_dev_seal("rsa-2048")
    return made.key_pem, made.cert_pem


def timestamper(tsa: LocalTsa, **options: float) -> Tsa:
    return Tsa(tsa.url, x509.load_pem_x509_certificates(tsa.cert_pem), **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sealed_t(local_tsa: LocalTsa, dev: tuple[bytes, bytes], unsigned_specimen: bytes) -> bytes:
    tsa = timestamper(local_tsa)
    try:
        return Seal.from_pem(*dev, format="xades-t").sign(unsigned_specimen, timestamp=tsa)
    finally:
        tsa.close()


def token_of(document: bytes) -> tuple[TimeStampResponse, bytes]:
    """The timestamp token in a document and the canonical SignatureValue it must cover, read anew."""
    root = parse_bytes(document)
    stamp = root.find(f".//{{{XADES_NS}}}SignatureTimeStamp")
    assert stamp is not None
    method = stamp.find(f"{{{DSIG_NS}}}CanonicalizationMethod")
    assert method is not None and method.get("Algorithm") == EXC_C14N
    token = base64.b64decode(stamp.findtext(f"{{{XADES_NS}}}EncapsulatedTimeStamp") or "")
    value = root.find(f".//{{{DSIG_NS}}}SignatureValue")
    assert value is not None
    # A TimeStampResp is the status (granted: SEQUENCE { INTEGER 0 }) followed by the token.
    status_granted = bytes.fromhex("3003020100")
    body = status_granted + token
    response = decode_timestamp_response(_der_sequence(body))
    return response, c14n(value, exclusive=True)


def _der_sequence(content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 0x80 else bytes([0x80 | 2]) + size.to_bytes(2, "big")
    return b"\x30" + length + content


def test_dss_finds_a_xades_baseline_t_seal_and_passes_it_with_the_tsa_root_trusted(
    sealed_t: bytes, dev: tuple[bytes, bytes], local_tsa: LocalTsa, tmp_path: Path
) -> None:
    report = dss(sealed_t, dev[1], tmp_path, local_tsa.cert_pem)
    assert (report["format"], report["indication"]) == ("XAdES-BASELINE-T", "TOTAL_PASSED"), report


def test_the_timestamp_covers_the_canonical_signature_value_and_checks_with_rfc3161_client(
    sealed_t: bytes, local_tsa: LocalTsa
) -> None:
    response, signature_value = token_of(sealed_t)
    verifier = (
        VerifierBuilder().add_root_certificate(x509.load_pem_x509_certificate(local_tsa.cert_pem)).build()
    )
    assert verifier.verify_message(response, signature_value)
    other = VerifierBuilder().add_root_certificate(x509.load_pem_x509_certificate(local_tsa.cert_pem)).build()
    with pytest.raises(Exception, match="Mismatch"):
        other.verify_message(response, signature_value.replace(b">", b"> ", 1))


def test_a_xades_t_seal_still_verifies_with_our_verifier(sealed_t: bytes, dev: tuple[bytes, bytes]) -> None:
    assert verify(sealed_t, dev[1]).valid


def test_xades_t_without_a_timestamp_authority_is_refused(
    dev: tuple[bytes, bytes], unsigned_specimen: bytes
) -> None:
    with pytest.raises(SigningError, match="COC_TSA_URL"):
        Seal.from_pem(*dev, format="xades-t").sign(unsigned_specimen)


def test_a_tsa_that_is_away_makes_sealing_wait_and_a_tsa_back_seals(
    local_tsa: LocalTsa, dev: tuple[bytes, bytes], unsigned_specimen: bytes
) -> None:
    seal = Seal.from_pem(*dev, format="xades-t")
    local_tsa.stop()
    tsa = timestamper(local_tsa, attempts=2, first_wait_s=0.05, timeout_s=2)
    try:
        with pytest.raises(TimestampUnavailable, match="after 2 attempts"):
            seal.sign(unsigned_specimen, timestamp=tsa)
        assert not issubclass(TimestampUnavailable, SigningError)  # transient for the stage: the record waits
        local_tsa.start()
        assert verify(seal.sign(unsigned_specimen, timestamp=tsa)).valid
    finally:
        tsa.close()
        if local_tsa.server is None:
            local_tsa.start()


def test_a_timestamp_from_an_untrusted_tsa_is_not_accepted(
    local_tsa: LocalTsa, dev: tuple[bytes, bytes], unsigned_specimen: bytes
) -> None:
    stranger = generate_dev_seal("rsa-2048").certificate
    tsa = Tsa(local_tsa.url, [stranger], attempts=1)
    try:
        with pytest.raises(TimestampUnavailable, match="does not check"):
            Seal.from_pem(*dev, format="xades-t").sign(unsigned_specimen, timestamp=tsa)
    finally:
        tsa.close()


async def test_the_holder_seals_xades_t_off_the_event_loop_with_the_timestamp(
    local_tsa: LocalTsa, dev: tuple[bytes, bytes], unsigned_specimen: bytes
) -> None:
    seal = Seal.from_pem(*dev, format="xades-t")
    holder = SealHolder(seal=seal, timestamp=timestamper(local_tsa))
    try:
        signed = await holder.sign(seal, unsigned_specimen)
    finally:
        holder.close()
    assert b"EncapsulatedTimeStamp" in signed and verify(signed).valid


def test_the_service_does_not_start_with_xades_t_and_no_timestamp_authority(tmp_path: Path) -> None:
    from services.signing.adapters.keys import SealNotConfigured, load_tsa
    from services.signing.settings import SigningSettings

    with pytest.raises(SealNotConfigured, match="COC_TSA_URL and COC_TSA_TRUST"):
        load_tsa(SigningSettings(_env_file=None, seal_format="xades-t", tsa_url=None))
    assert load_tsa(SigningSettings(_env_file=None, seal_format="xades-b")) is None


def test_a_xades_t_certificate_passes_both_readings_of_the_official_schema(
    sealed_t: bytes, xsd_path: Path
) -> None:
    root = parse_bytes(sealed_t)
    assert validate(load_ivi_schema(xsd_path), root) == []
    assert [e.reason for e in xmlschema.XMLSchema(str(xsd_path), allow="local").iter_errors(root)] == []
