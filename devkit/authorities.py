"""Local stand-ins for the authorities, for tests and the demo: a EUCARIS NAP and the UK VCA's eCoC API.

They are test servers, never the product (whose endpoints come from settings),
written to the documented behaviour: a NAP is a SOAP web service over HTTPS
that requires a client certificate (mutual TLS) and answers each upload with an
acceptance or a fault; the VCA takes an OAuth2 client-credentials token, a
``POST`` of the IVI XML answered ``202 Accepted`` and a status to poll. Both keep
one copy per IviReferenceId and answer a second upload of it as a duplicate.

Each can be told to misbehave for the next requests (``fail_next``): ``drop``
closes the connection without an answer, ``503`` answers Service Unavailable,
``slow`` waits longer than a client's timeout. ``reject`` maps a VIN to the
rejection its certificate gets. Everything they receive is counted, so a test
can say that each certificate was stored exactly once.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

IVI_NS = "http://eu.ereg.initialvehicleinformation.v2"
SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
SUBMIT_NS = "urn:coc:eucaris:ecoc:submission:1"
MAX_BODY = 10 * 1024 * 1024


# --- a test PKI: a CA, a server certificate, client certificates -----------------------------


@dataclass(frozen=True)
class Pki:
    """Files of a test CA and what it issued, in one folder."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    def cert(self, name: str) -> Path:
        return self.folder / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"


def make_pki(folder: Path, clients: tuple[str, ...] = ("client",)) -> Pki:
    """A test CA with a server certificate for 127.0.0.1/localhost and one client certificate per name.

    A client named ``stranger`` is issued by a CA of its own, which the servers do not trust.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(folder)
    ca_key, ca_cert = _ca("eCoC test CA")
    _write(pki.ca, ca_cert, None)
    _issue(pki, "server", ca_key, ca_cert, server=True)
    other_key, other_cert = _ca("Some other CA")
    for name in clients:
        key, cert = (other_key, other_cert) if name == "stranger" else (ca_key, ca_cert)
        _issue(pki, name, key, cert, server=False)
    return pki


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    pki: Pki, name: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, *, server: bool
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"eCoC test {name}")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    _write(pki.cert(name), builder.sign(ca_key, hashes.SHA256()), None)
    _write(pki.key(name), None, key)


def _write(path: Path, cert: x509.Certificate | None, key: ec.EllipticCurvePrivateKey | None) -> None:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.touch(mode=0o600)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


# --- what both servers share -----------------------------------------------------------------


@dataclass
class Ledger:
    """What a test authority received and kept."""

    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # IviReferenceId → what was kept
    uploads: collections.Counter[str] = field(default_factory=collections.Counter)  # per IviReferenceId
    requests: int = 0
    refused_tls: int = 0

    def per_certificate(self) -> collections.Counter[tuple[str, int]]:
        """How many times each (VIN, IviVersionNumber) is kept: 1 each when nothing was delivered twice."""
        return collections.Counter((s["vin"], s["version"]) for s in self.stored.values())


@dataclass
class Behaviour:
    fail_next: list[str] = field(default_factory=list)  # drop, 503, slow: one per coming request
    delay_s: float = 0.0  # every upload waits this long
    slow_s: float = 5.0
    reject: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # VIN → (code, field, message)


def ivi_header(document: bytes) -> dict[str, Any]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(document, parser)
    if etree.QName(root).namespace != IVI_NS or etree.QName(root).localname != "InitialVehicleInformation":
        raise ValueError("not an IVI 2.0 document")

    def text(path: str) -> str:
        found = root.find(path, {"i": IVI_NS})
        if found is None or not (found.text or "").strip():
            raise ValueError(f"{path} missing")
        return (found.text or "").strip()

    if root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None:
        raise ValueError("the document is not signed")
    return {
        "vin": text(".//i:VehicleIdentificationNumber"),
        "reference": text("i:Header/i:IviReferenceId"),
        "version": int(text("i:Header/i:IviVersionNumber")),
        "sha256": hashlib.sha256(document).hexdigest(),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # a refused TLS handshake, a cut
        authority: Any = getattr(self, "authority", None)
        if authority is not None:
            authority.ledger.refused_tls += 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    @property
    def authority(self) -> Any:
        return getattr(self.server, "authority")  # noqa: B009

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length)

    def answer(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def misbehave(self) -> bool:
        """Carry out the next planned fault; True when the request is answered (or dropped) by it."""
        behaviour: Behaviour = self.authority.behaviour
        with self.authority.lock:
            self.authority.ledger.requests += 1
            fault = behaviour.fail_next.pop(0) if behaviour.fail_next else None
        if fault == "drop":
            self.close_connection = True
            self.connection.close()
            return True
        if fault == "503":
            self.answer(503, b"Service Unavailable", "text/plain", {"Retry-After": "1"})
            return True
        if fault == "slow":
            time.sleep(behaviour.slow_s)
        if behaviour.delay_s:
            time.sleep(behaviour.delay_s)
        return False


class Authority:
    """A test server in a thread: ``with authority.running(): ...``."""

    handler: type[_Handler]

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.ledger = Ledger()
        self.behaviour = Behaviour()
        self.lock = threading.Lock()
        self.server: _Server | None = None

    def tls(self) -> ssl.SSLContext | None:
        return None

    @contextmanager
    def running(self) -> Iterator[Authority]:
        server = _Server(("127.0.0.1", self.port), self.handler)
        context = self.tls()
        if context is not None:
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        server.authority = self  # type: ignore[attr-defined]
        self.server, self.port = server, server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    def keep(self, header: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Keep a certificate once per IviReferenceId; (False, the first copy) for a repeat."""
        with self.lock:
            self.ledger.uploads[header["reference"]] += 1
            first = self.ledger.stored.get(header["reference"])
            if first is not None:
                return False, first
            kept = {**header, "receipt": uuid.uuid4().hex, "at": time.time()}
            self.ledger.stored[header["reference"]] = kept
            return True, kept


# --- the NAP: SOAP over mutual TLS -----------------------------------------------------------


def soap(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:m="{SUBMIT_NS}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def soap_fault(
    side: str, reason: str, code: str | None = None, field: str | None = None, receipt: str = ""
) -> bytes:
    detail = ""
    if code:
        detail = (
            f"<soap:Detail><m:Rejection><m:Code>{code}</m:Code><m:Field>{field or ''}</m:Field>"
            f"<m:ReceiptId>{receipt}</m:ReceiptId></m:Rejection></soap:Detail>"
        )
    return soap(
        f"<soap:Fault><soap:Code><soap:Value>soap:{side}</soap:Value></soap:Code>"
        f'<soap:Reason><soap:Text xml:lang="en">{reason}</soap:Text></soap:Reason>{detail}</soap:Fault>'
    )


def _corrects(envelope: Any, version: int) -> str | None:
    """The IviReferenceId a correction names as the one it replaces (None for a first certificate)."""
    found = envelope.find(f"{{{SOAP_NS}}}Body/{{{SUBMIT_NS}}}SubmitIvi/{{{SUBMIT_NS}}}Correction")
    if found is None:
        return None
    named = found.findtext(f"{{{SUBMIT_NS}}}IviVersionNumber")
    if named != str(version):
        raise ValueError(f"the correction names version {named}, the document holds {version}")
    return (found.findtext(f"{{{SUBMIT_NS}}}PreviousIviReferenceId") or "").strip() or None


class _NapHandler(_Handler):
    def do_POST(self) -> None:
        try:
            request = self.body()  # read whole first: what follows on a kept-alive connection stays whole
        except ValueError:
            self.answer(413, b"too large", "text/plain")
            return
        if self.misbehave():
            return
        try:
            root = etree.fromstring(request, etree.XMLParser(resolve_entities=False, no_network=True))
            encoded = root.findtext(f"{{{SOAP_NS}}}Body/{{{SUBMIT_NS}}}SubmitIvi/{{{SUBMIT_NS}}}Document")
            if encoded is None:
                raise ValueError("no SubmitIvi/Document")
            header = ivi_header(base64.b64decode(encoded))
            header["corrects"] = _corrects(root, header["version"])
        except (ValueError, etree.XMLSyntaxError) as exc:
            self.answer(
                400,
                soap_fault("Sender", f"unreadable message: {exc}", "ENVELOPE_INVALID"),
                "application/soap+xml",
            )
            return
        rejection = self.authority.behaviour.reject.get(header["vin"])
        if rejection is not None:
            code, path, message = rejection
            self.answer(400, soap_fault("Sender", message, code, path), "application/soap+xml")
            return
        first, kept = self.authority.keep(header)
        if not first:
            fault = soap_fault(
                "Sender", "IviReferenceId already received", "DUPLICATE_REFERENCE", None, kept["receipt"]
            )
            self.answer(400, fault, "application/soap+xml")
            return
        body = (
            f"<m:SubmitIviResponse><m:Status>ACCEPTED</m:Status>"
            f"<m:ReceiptId>{kept['receipt']}</m:ReceiptId></m:SubmitIviResponse>"
        )
        self.answer(200, soap(body), "application/soap+xml")


class Nap(Authority):
    """A national access point: HTTPS that requires a client certificate issued by the test CA."""

    handler = _NapHandler

    def __init__(self, pki: Pki, port: int = 0) -> None:
        super().__init__(port)
        self.pki = pki

    def tls(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.cert("server"), self.pki.key("server"))
        context.load_verify_locations(self.pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/nap/ecoc"


# --- the VCA: OAuth2 and REST ----------------------------------------------------------------


class _VcaHandler(_Handler):
    request_body = b""

    def do_POST(self) -> None:
        try:
            self.request_body = self.body()  # read whole first, whatever the answer
        except ValueError:
            self.answer(413, b"too large", "text/plain")
            return
        if self.path == "/oauth2/token":
            self.token()
        elif self.path == "/ecoc/v1/submissions":
            self.submit()
        else:
            self.answer(404, b'{"error":"not_found"}', "application/json")

    def do_GET(self) -> None:
        prefix = "/ecoc/v1/submissions/"
        if not self.path.startswith(prefix):
            self.answer(404, b'{"error":"not_found"}', "application/json")
            return
        if not self.authorised():
            return
        self.poll(self.path[len(prefix) :])

    def json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.answer(status, json.dumps(data).encode(), "application/json", headers)

    def token(self) -> None:
        vca: Vca = self.authority
        form = {k: v[0] for k, v in parse_qs(self.request_body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            self.json(400, {"error": "unsupported_grant_type"})
            return
        if form.get("client_id") != vca.client_id or form.get("client_secret") != vca.client_secret:
            self.json(401, {"error": "invalid_client"})
            return
        token = secrets.token_urlsafe(24)
        with vca.lock:
            vca.tokens[token] = time.time() + vca.token_lifetime_s
            vca.tokens_issued += 1
        self.json(200, {"access_token": token, "token_type": "Bearer", "expires_in": vca.token_lifetime_s})

    def authorised(self) -> bool:
        vca: Vca = self.authority
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        with vca.lock:
            expires = vca.tokens.get(token)
        if expires is None or expires < time.time():
            with vca.lock:
                vca.refused_tokens += 1
            self.json(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return False
        return True

    def submit(self) -> None:
        vca: Vca = self.authority
        if not self.authorised() or self.misbehave():
            return
        if not self.headers.get("X-Manufacturer-Id") or not self.headers.get("X-Contact-Id"):
            self.json(400, {"errors": [{"code": "MISSING_ID", "field": "header", "message": "ids required"}]})
            return
        try:
            header = ivi_header(self.request_body)
        except (ValueError, etree.XMLSyntaxError) as exc:
            self.json(400, {"errors": [{"code": "SCHEMA_INVALID", "field": "", "message": str(exc)}]})
            return
        first, kept = vca.keep(header)
        if not first:
            self.json(409, {"submissionId": kept["receipt"], "status": "DUPLICATE"})
            return
        with vca.lock:
            vca.polls[kept["receipt"]] = 0
        self.json(
            202,
            {"submissionId": kept["receipt"], "status": "RECEIVED"},
            {"Location": f"/ecoc/v1/submissions/{kept['receipt']}"},
        )

    def poll(self, submission: str) -> None:
        vca: Vca = self.authority
        with vca.lock:
            if submission not in vca.polls:
                self.json(404, {"error": "unknown submission"})
                return
            vca.polls[submission] += 1
            polled = vca.polls[submission]
            kept = next(s for s in vca.ledger.stored.values() if s["receipt"] == submission)
        if polled < 2:
            self.json(200, {"submissionId": submission, "status": "PROCESSING"})
            return
        rejection = vca.behaviour.reject.get(kept["vin"])
        if rejection is not None:
            code, path, message = rejection
            errors = [{"code": code, "field": path, "message": message}]
            self.json(200, {"submissionId": submission, "status": "REJECTED", "errors": errors})
            return
        self.json(200, {"submissionId": submission, "status": "ACCEPTED", "receiptId": submission})


class Vca(Authority):
    """The UK VCA's eCoC API (plain HTTP here; the product speaks HTTPS to the real one)."""

    handler = _VcaHandler

    def __init__(
        self, client_id: str, client_secret: str, port: int = 0, token_lifetime_s: float = 3600
    ) -> None:
        super().__init__(port)
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime_s = token_lifetime_s
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.refused_tokens = 0
        self.polls: dict[str, int] = {}

    def expire_tokens(self) -> None:
        """Every token issued so far stops working now (as a server-side expiry or revocation does)."""
        with self.lock:
            self.tokens = {token: 0.0 for token in self.tokens}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"
