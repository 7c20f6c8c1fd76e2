"""``coc evidence`` (one certificate's release evidence) and ``coc audit`` (the whole archive re-checked)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from cli.main import CommandError

BREAKS_SHOWN = 20  # break lines printed before the summary; --json has them all
AUDIT_EXIT_CODES = (
    "exit status: 0 every certificate and chain passed, 1 breaks found (each named), 2 bad input"
)


def register(subparsers: Any) -> None:
    evidence = subparsers.add_parser(
        "evidence",
        help="a certificate's release evidence: certificate, build, approval, release, chain, receipts",
    )
    evidence.add_argument("vin")
    evidence.add_argument("--revision", type=int, help="one revision (default: the current certificate)")
    evidence.add_argument("--out", type=Path, required=True, help="folder: the ZIP and its files go there")
    evidence.set_defaults(func=run_evidence)

    audit = subparsers.add_parser(
        "audit",
        help="re-check every archived certificate: schema, seal, trusted signer, evidence, hash chains",
        epilog=AUDIT_EXIT_CODES,
    )
    audit.add_argument(
        "--cert",
        type=Path,
        help="PEM trust anchor (also the PEM files of COC_TRUST_DIR; default: the local stack's seal)",
    )
    audit.add_argument("--json", action="store_true", help="the summary and every break as JSON")
    audit.set_defaults(func=run_audit)


def kind_of(what: str) -> str:
    """A break's kind, for the summary: its words without the hashes, revisions and numbers in it."""
    return re.sub(r"\b[0-9a-f]{12,}\b|\[[^\]]*\]|\b\d+\b", "…", what)[:100]


def run_evidence(args: argparse.Namespace) -> int:
    from cli.client import Client
    from shared.auth import Role

    client = Client()
    suffix = f"/{args.revision}" if args.revision else ""
    response = client.call(
        "GET", f"{client.settings.archive_url}/v1/evidence/{args.vin}{suffix}", Role.VIEWER
    )
    folder: Path = args.out
    try:
        folder.mkdir(parents=True, exist_ok=True)
        name = f"evidence-{args.vin.upper()}{('-' + str(args.revision)) if args.revision else ''}.zip"
        (folder / name).write_bytes(response.content)
        with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
            members = bundle.namelist()
            for member in members:
                target = (folder / member).resolve()
                if folder.resolve() not in target.parents:
                    raise CommandError(f"the bundle holds a path outside {folder}: {member}")
            bundle.extractall(folder)
            manifest = json.loads(bundle.read(next(m for m in members if m.endswith("manifest.json"))))
    except OSError as exc:
        raise CommandError(f"cannot write to {folder}: {exc.strerror}") from None
    print(f"wrote {folder / name} and its {len(members)} files under {folder / members[0].split('/')[0]}")
    print(
        f"{manifest['record_id']}: IviVersionNumber {manifest['version_number']}, sha256 {manifest['sha256']}, "
        f"approval {manifest['approval_key']} ({manifest['approval_sha256'][:12]}…), trace {manifest['trace_id']}"
    )
    return 0


def run_audit(args: argparse.Namespace) -> int:
    from cli.workbench import trust_anchors, xsd_path
    from shared.settings import ServiceSettings
    from shared.xml import load_ivi_schema

    settings = ServiceSettings()
    anchors = trust_anchors(args.cert)
    if not anchors:
        from cryptography import x509

        from deploy.local.services import seal_paths

        _key, cert = seal_paths(settings)
        if not cert.is_file():
            raise CommandError(
                "no trust anchor: give --cert (the seal certificate or its CA) or set COC_TRUST_DIR"
            )
        print(
            f"trusting the local stack's development seal {cert} (give --cert for another)", file=sys.stderr
        )
        anchors = x509.load_pem_x509_certificates(cert.read_bytes())
    schema = load_ivi_schema(xsd_path())
    summary, seconds = asyncio.run(audit(settings, schema, anchors))
    rate = summary.certificates / seconds if seconds else 0.0
    if args.json:
        print(
            json.dumps(
                {
                    "certificates": summary.certificates,
                    "vins": summary.vins,
                    "seconds": round(seconds, 2),
                    "per_second": round(rate, 1),
                    "breaks": [b.__dict__ for b in summary.breaks],
                },
                indent=2,
            )
        )
    else:
        for found in summary.breaks[:BREAKS_SHOWN]:
            print(f"BROKEN {found.vin}{' ' + found.record_id if found.record_id else ''}: {found.what}")
        if len(summary.breaks) > BREAKS_SHOWN:
            print(f"… and {len(summary.breaks) - BREAKS_SHOWN:,} more breaks (--json lists every one)")
        kinds = Counter(kind_of(found.what) for found in summary.breaks)
        for kind, count in kinds.most_common():
            print(f"{count:>10,}  {kind}")
        print(f"{'certificates checked':<24}{summary.certificates:>12,}")
        print(f"{'vehicles (chains)':<24}{summary.vins:>12,}")
        print(f"{'breaks':<24}{len(summary.breaks):>12,}")
        print(f"{'vehicles with a break':<24}{len(summary.broken_vins()):>12,}")
        print(f"{'seconds':<24}{seconds:>12.1f}")
        print(f"{'certificates / second':<24}{rate:>12.0f}")
    return 1 if summary.breaks else 0


async def audit(settings: Any, schema: Any, anchors: list[Any]) -> tuple[Any, float]:
    """Stream the archive through the auditor: every certificate, then every chain."""
    from cli.client import progress
    from services.archive.adapters.store import APPROVALS, COLLECTION, HEADS
    from services.archive.audit import Auditor, Summary
    from services.archive.evidence import approval_sha256_of
    from shared.mongo import database, make_client

    client = make_client(settings)
    try:
        db = database(client, settings)
        approvals: dict[str, str | None] = {}
        async for doc in db[APPROVALS].find({}):
            try:
                approvals[doc["_id"]] = approval_sha256_of(doc["approval"])
            except ValueError:
                approvals[doc["_id"]] = "unreadable"
        heads = {doc["_id"]: doc async for doc in db[HEADS].find({})}
        total = await db[COLLECTION].count_documents({})
        auditor = Auditor(schema, anchors, approvals.get)
        summary = Summary()
        began = last = time.monotonic()
        async for row in db[COLLECTION].find({}, batch_size=200):
            summary.breaks.extend(auditor.certificate(row))
            summary.certificates += 1
            if time.monotonic() - last >= 1.0:
                last = time.monotonic()
                progress(summary.certificates, max(total, summary.certificates), "audited")
        summary.breaks.extend(auditor.chains(heads))
        summary.vins = len(set(auditor.links) | set(heads))
        seconds = time.monotonic() - began
        progress(summary.certificates, max(total, summary.certificates), "audited")
        return summary, seconds
    finally:
        await client.close()
