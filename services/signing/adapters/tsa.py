"""The timestamp authority: RFC 3161 tokens over HTTP for XAdES baseline T.

``Tsa`` is the ``Timestamp`` the seal asks for (``services.signing.seal``): it sends a
TimeStampReq for the SHA-256 of the canonical SignatureValue (RFC 3161 §2.4.1, with a
nonce and certReq), checks the answer (status granted, nonce and imprint as asked,
signed by a TSA certificate that chains to COC_TSA_TRUST and carries the critical
id-kp-timeStamping usage, §2.3) with rfc3161-client, and returns the token's DER.

A fault (the TSA away, an error status, an answer that does not check) is retried a
few times with a doubling wait; then ``TimestampUnavailable`` propagates. It is not a
``SigningError``: the stage runtime treats it as transient, so the record waits and is
sealed once the TSA answers again, never without its timestamp.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from cryptography import x509

MAX_RESPONSE_BYTES: Final = 64 * 1024
QUERY_TYPE: Final = "application/timestamp-query"


class TimestampUnavailable(Exception):
    """The TSA gave no usable timestamp now; the record waits (a transient fault)."""


@dataclass
class Tsa:
    url: str
    roots: Sequence[x509.Certificate]
    timeout_s: float = 10.0
    attempts: int = 3
    first_wait_s: float = 0.5
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.roots:
            raise ValueError(
                "COC_TSA_TRUST names no certificate: a timestamp must be checked against its TSA"
            )
        self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)

    def __call__(self, message: bytes) -> bytes:
        wait, last = self.first_wait_s, "no attempt"
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(wait)
                wait *= 2
            try:
                return self._once(message)
            except TimestampUnavailable as exc:
                last = str(exc)
        raise TimestampUnavailable(f"no timestamp from {self.url} after {self.attempts} attempts: {last}")

    def _once(self, message: bytes) -> bytes:
        from rfc3161_client import (
            HashAlgorithm,
            TimestampRequestBuilder,
            VerificationError,
            VerifierBuilder,
            decode_timestamp_response,
        )

        request = TimestampRequestBuilder(
            data=message, hash_algorithm=HashAlgorithm.SHA256, nonce=True, cert_req=True
        ).build()
        body = self._post(request.as_bytes())
        try:
            response = decode_timestamp_response(body)
        except ValueError:
            raise TimestampUnavailable("the answer is not an RFC 3161 TimeStampResp") from None
        builder: Any = VerifierBuilder.from_request(request)
        for root in self.roots:
            builder = builder.add_root_certificate(root)
        try:
            builder.build().verify_message(response, message)
        except VerificationError as exc:
            raise TimestampUnavailable(f"the timestamp does not check: {exc}") from None
        return bytes(response.time_stamp_token())

    def _post(self, query: bytes) -> bytes:
        try:
            with self._client.stream(
                "POST", self.url, content=query, headers={"Content-Type": QUERY_TYPE}
            ) as answer:
                if answer.status_code != httpx.codes.OK:
                    raise TimestampUnavailable(f"HTTP {answer.status_code}")
                body = b""
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise TimestampUnavailable(f"the answer is over {MAX_RESPONSE_BYTES} bytes")
                return body
        except httpx.HTTPError as exc:
            raise TimestampUnavailable(f"{type(exc).__name__}") from None

    def close(self) -> None:
        self._client.close()


def load_roots(pem: bytes) -> list[x509.Certificate]:
    """The TSA trust anchors from COC_TSA_TRUST (one or more PEM certificates)."""
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ValueError(f"COC_TSA_TRUST holds no PEM certificate: {exc}") from None
