"""The release evidence of one certificate, as one ZIP an auditor can keep. Pure: rows in, bytes out.

What an auditor or a type-approval authority asks, "why was this certificate
issued, with which data, approved by whom, signed with what", answered by
files whose SHA-256 the manifest lists:

- ``certificate.xml``: the signed certificate, the bytes exactly as archived;
- ``build.json``: the build record it was rendered from (as intake accepted it);
- ``approval.json``: the approval snapshot it was checked against and rendered with;
- ``release.json``: the release policy in force, the findings settled and who settled them;
- ``signer.pem``: the seal certificate that signed it (from its KeyInfo);
- ``chain.json``: its place in the VIN's hash chain, every link with its hashes;
- ``deliveries.json``: the delivery receipts, or why there are none;
- ``correction.json`` (a re-issue after an approval correction): the approval
  change (key, old → new SHA-256, who changed it), who started the re-issue and
  the certificate it corrects; an original's manifest names the one correcting it;
- ``manifest.json``: the identity of the certificate, the trace id and each file's SHA-256.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import textwrap
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from services.archive.stored_xml import xml_of
from shared.contracts.approvals import Approval, master_data_sha256
from shared.xml import DSIG_NS, XmlInputError, parse_bytes

BUNDLE_VERSION = 1
# Fixed member times: the same evidence gives the same ZIP bytes.
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


class EvidenceError(ValueError):
    """The stored certificate lacks what a bundle needs (it was archived before evidence was kept)."""


def signer_pem(signed_xml: bytes) -> str | None:
    """The seal certificate in the document's KeyInfo, as PEM; None when there is none."""
    try:
        root = parse_bytes(signed_xml)
    except XmlInputError:
        return None
    found = root.find(f"{{{DSIG_NS}}}Signature/{{{DSIG_NS}}}KeyInfo//{{{DSIG_NS}}}X509Certificate")
    if found is None or not (found.text or "").strip():
        return None
    der = base64.b64decode("".join((found.text or "").split()))
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def seal_named(pem: str | None, approval: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The seal a certificate was sealed with: its holder (the approval's), subject, serial, fingerprint, end."""
    if pem is None:
        return None
    from cryptography import x509

    from shared.contracts.seals import holder_in
    from shared.xmldsig import certificate_fingerprint

    certificate = x509.load_pem_x509_certificate(pem.encode())
    return {
        "holder": holder_in(approval.get("certificate") or {}) if approval is not None else None,
        "subject": certificate.subject.rfc4514_string(),
        "serial": f"{certificate.serial_number:x}",
        "sha256": certificate_fingerprint(certificate),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }


def chain_entries(chain: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "revision": row["revision"],
            "version_number": row.get("version_number"),
            "sha256": row["sha256"],
            "previous_sha256": row.get("previous_sha256"),
            "archived_at": _time(row.get("archived_at")),
        }
        for row in chain
    ]


def bundle(
    row: Mapping[str, Any],
    approval: Mapping[str, Any] | None,
    chain: Sequence[Mapping[str, Any]],
    deliveries: Sequence[Mapping[str, Any]] | str,
) -> bytes:
    """The ZIP of one certificate's evidence; ``deliveries`` is the receipts or why there are none."""
    evidence = row.get("evidence")
    if not evidence:
        raise EvidenceError(
            f"certificate {row['_id']} was archived without its evidence (archived before evidence was kept)"
        )
    xml = xml_of(row)
    links = chain_entries(chain)
    position = next((i for i, link in enumerate(links) if link["revision"] == row["revision"]), None)
    files: dict[str, bytes] = {
        "certificate.xml": xml,
        "build.json": _json(evidence["build"]),
        "approval.json": _json(
            approval
            if approval is not None
            else {
                "approval_sha256": evidence["approval_sha256"],
                "note": "the approval snapshot is not in the archive: it was too large to travel with "
                "the certificate (see validation's record of this VIN)",
            }
        ),
        "release.json": _json(evidence.get("release") or {"policy": None, "note": "not recorded"}),
        "chain.json": _json({"vin": row["vin"], "position": position, "links": links}),
        "deliveries.json": _json(_deliveries_of(row["_id"], deliveries)),
    }
    correction = correction_of(row, chain)
    if correction is not None:
        files["correction.json"] = _json(correction)
    pem = signer_pem(xml)
    if pem is not None:
        files["signer.pem"] = pem.encode()
    manifest = {
        "bundle_version": BUNDLE_VERSION,
        "record_id": row["_id"],
        "vin": row["vin"],
        "revision": row["revision"],
        "version_number": row.get("version_number"),
        "sha256": row["sha256"],
        "previous_sha256": row.get("previous_sha256"),
        "signer_fingerprint": row.get("signer_fingerprint"),
        "seal": seal_named(pem, approval),
        "archived_at": _time(row.get("archived_at")),
        "trace_id": evidence.get("trace_id"),
        "approval_key": evidence.get("approval_key"),
        "approval_sha256": evidence["approval_sha256"],
        "corrects": correction["corrects"] if correction else None,
        "corrected_by": corrected_by(row, chain),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [("manifest.json", _json(manifest)), *sorted(files.items())]:
            archive.writestr(zipfile.ZipInfo(f"{row['_id'].replace(':', '-')}/{name}", _ZIP_TIME), data)
    return out.getvalue()


def correction_of(row: Mapping[str, Any], chain: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """What a re-issued certificate corrects and why (None for any other certificate)."""
    correction = ((row.get("evidence") or {}).get("build") or {}).get("correction")
    if not correction:
        return None
    original = next((link for link in chain if link.get("revision") == correction["of_revision"]), None)
    old_sha256 = ((original or {}).get("evidence") or {}).get("approval_sha256")
    return {
        "approval_change": {
            "approval_key": correction["approval_key"],
            "old_sha256": old_sha256,
            "new_sha256": correction["approval_sha256"],
            "changed_by": correction["changed_by"],
        },
        "started_by": correction["started_by"],
        "job": correction["job"],
        "corrects": {
            "record_id": f"{row['vin']}:{correction['of_revision']}",
            "revision": correction["of_revision"],
            "version_number": correction["of_version_number"],
            "sha256": (original or {}).get("sha256"),
        },
    }


def corrected_by(row: Mapping[str, Any], chain: Sequence[Mapping[str, Any]]) -> str | None:
    """The record id of the re-issue that corrects this certificate, if one was archived."""
    for link in chain:
        correction = ((link.get("evidence") or {}).get("build") or {}).get("correction") or {}
        if correction.get("of_revision") == row["revision"]:
            return str(link["_id"])
    return None


def _deliveries_of(record_id: str, deliveries: Sequence[Mapping[str, Any]] | str) -> dict[str, Any]:
    if isinstance(deliveries, str):
        return {"deliveries": [], "note": deliveries}
    own = [dict(d) for d in deliveries if d.get("record_id") == record_id]
    return {"deliveries": own} if own else {"deliveries": [], "note": "no delivery of this certificate"}


def approval_sha256_of(stored: Mapping[str, Any]) -> str:
    """The SHA-256 the stored approval snapshot has now (equal to its key unless it was altered)."""
    return master_data_sha256(Approval.model_validate(stored))


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


def _time(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return None if value is None else str(value)
