"""The UK VCA eCoC API's messages: the OAuth2 token request, the submission, its status, read back.

As with ``services.delivery.nap``, the shapes live here alone: the connector
sends what these build and hands back what they read. The flow: an OAuth2
client-credentials token (cached until it expires), ``POST`` of the signed IVI
XML as ``application/xml`` with the manufacturer and contact ids, ``202
Accepted`` with a submission id, then the submission's status polled until it
is accepted or rejected with its errors. A second submission of the same
IviReferenceId is answered ``409`` with the submission that holds it.
"""

from __future__ import annotations

import json
from typing import Any

from services.delivery.deliver import Answer, Reply, raw_text
from shared.contracts import Owner

SUBMISSIONS = "/ecoc/v1/submissions"
MANUFACTURER_HEADER, CONTACT_HEADER = "X-Manufacturer-Id", "X-Contact-Id"
# A correction (IviVersionNumber above 1) says so beside the document, as the NAP message does.
VERSION_HEADER, CORRECTS_HEADER = "X-Ivi-Version-Number", "X-Previous-Ivi-Reference-Id"


def correction_headers(version_number: int, corrects: str | None) -> dict[str, str]:
    """The headers naming what a correction replaces; none for a first certificate."""
    if version_number <= 1 or not corrects:
        return {}
    return {VERSION_HEADER: str(version_number), CORRECTS_HEADER: corrects}


def token_form(client_id: str, client_secret: str, scope: str | None) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    if scope:
        form["scope"] = scope
    return form


def read_token(status: int, body: bytes) -> tuple[str, float]:
    """The access token and its lifetime in seconds; ValueError saying why there is none."""
    data = _json(body)
    if status != 200 or not isinstance(data.get("access_token"), str):
        error = data.get("error_description") or data.get("error") or body[:200].decode("utf-8", "replace")
        raise ValueError(f"the VCA token endpoint refused (HTTP {status}): {error}")
    return data["access_token"], float(data.get("expires_in") or 300)


def read_submission(status: int, body: bytes) -> Reply:
    """The answer to a ``POST`` of a certificate."""
    raw = raw_text(body)
    data = _json(body)
    submission = str(data.get("submissionId") or "") or None
    if status in (200, 201, 202):
        if submission is None:
            return Reply(
                Answer.TRANSIENT, f"HTTP {status} without a submission id", http_status=status, raw=raw
            )
        return Reply(Answer.SUBMITTED, "submitted", http_status=status, submission_id=submission, raw=raw)
    if status == 409:
        return Reply(
            Answer.DUPLICATE, "already submitted", http_status=status, submission_id=submission, raw=raw
        )
    if status in (400, 422):
        return _rejection(data, status, raw)
    if status in (401, 403):
        return Reply(
            Answer.TRANSIENT,
            f"the VCA refused our token (HTTP {status}): check the client id, secret and scope",
            http_status=status,
            raw=raw,
            owner=Owner.INTEGRATION,
        )
    return Reply(Answer.TRANSIENT, f"the VCA answered HTTP {status}", http_status=status, raw=raw)


def read_status(status: int, body: bytes) -> Reply:
    """The answer to a poll of a submission."""
    raw = raw_text(body)
    data = _json(body)
    if status != 200:
        return Reply(Answer.TRANSIENT, f"status poll answered HTTP {status}", http_status=status, raw=raw)
    state = str(data.get("status") or "").upper()
    if state == "ACCEPTED":
        receipt = str(data.get("receiptId") or data.get("submissionId") or "") or None
        return Reply(Answer.ACCEPTED, "accepted", http_status=status, receipt_id=receipt, raw=raw)
    if state == "REJECTED":
        return _rejection(data, status, raw)
    return Reply(Answer.PROCESSING, state.lower() or "processing", http_status=status, raw=raw)


def _rejection(data: dict[str, Any], status: int, raw: str) -> Reply:
    listed = data.get("errors")
    errors: list[Any] = listed if isinstance(listed, list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    message = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict)) or "rejected"
    return Reply(
        Answer.REJECTED,
        message,
        code=str(first.get("code") or "") or None,
        field=str(first.get("field") or "") or None,
        http_status=status,
        raw=raw,
    )


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
