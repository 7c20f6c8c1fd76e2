"""``coc evidence`` (one certificate's release evidence) and ``coc audit`` (the archive and the audit log re-checked)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.errors import EXIT_STATUS, FAILED, BadInput

if TYPE_CHECKING:
    from services.archive.audit import Summary
    from services.workspace.audit_chain import Verdict

BREAKS_SHOWN = 20  # break lines printed before the summary; --json has them all
AUDIT_EXIT = (
    "Exit status: 0 every certificate, chain and audit log entry passed, 1 breaks found (each named) or "
    "the database does not answer, 2 bad command line or input."
)


def register(coc: click.Group) -> None:
    coc.add_command(evidence)
    coc.add_command(audit)


def kind_of(what: str) -> str:
    """A break's kind, for the summary: its words without the hashes, revisions and numbers in it."""
    return re.sub(r"\b[0-9a-f]{12,}\b|\[[^\]]*\]|\b\d+\b", "…", what)[:100]


@click.command(epilog=EXIT_STATUS)
@click.argument("vin")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="folder: the ZIP and its files go there"
)
@click.option("--revision", type=int, help="one revision (default: the current certificate)")
def evidence(vin: str, out: Path, revision: int | None) -> None:
    """A certificate's release evidence, as a ZIP and its files.

    The certificate, its build record, the approval snapshot, the release, the
    hash chain and the delivery receipts.
    """
    import io
    import zipfile

    from cli.client import Client
    from shared.auth import Role

    client = Client()
    suffix = f"/{revision}" if revision else ""
    response = client.call("GET", f"{client.settings.archive_url}/v1/evidence/{vin}{suffix}", Role.VIEWER)
    try:
        out.mkdir(parents=True, exist_ok=True)
        name = f"evidence-{vin.upper()}{('-' + str(revision)) if revision else ''}.zip"
        (out / name).write_bytes(response.content)
        with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
            members = bundle.namelist()
            for member in members:
                target = (out / member).resolve()
                if out.resolve() not in target.parents:
                    raise BadInput(f"the bundle holds a path outside {out}: {member}")
            bundle.extractall(out)
            manifest = json.loads(bundle.read(next(m for m in members if m.endswith("manifest.json"))))
    except OSError as exc:
        raise BadInput(f"cannot write to {out}: {exc.strerror}") from None
    print(f"wrote {out / name} and its {len(members)} files under {out / members[0].split('/')[0]}")
    print(
        f"{manifest['record_id']}: IviVersionNumber {manifest['version_number']}, sha256 {manifest['sha256']}, "
        f"approval {manifest['approval_key']} ({manifest['approval_sha256'][:12]}…), trace {manifest['trace_id']}"
    )


@click.command(epilog=AUDIT_EXIT)
@click.option(
    "--cert",
    type=click.Path(path_type=Path),
    help="PEM trust anchor (also the PEM files of COC_TRUST_DIR; default: the local stack's seal)",
)
@click.option("--json", "as_json", is_flag=True, help="the summary and every break as JSON")
def audit(cert: Path | None, as_json: bool) -> int:
    """Re-check every archived certificate, every hash chain and the audit log.

    Each certificate against the schema, its seal, the trusted signers and its
    evidence; each vehicle's chain of revisions; the workspace's audit log of
    people's actions, entry by entry along its hash chain (the first altered or
    missing entry is named; note the head's hash it shows, to compare later).
    """
    import asyncio

    from cli.workbench import xsd_path
    from shared.settings import ServiceSettings
    from shared.xml import load_ivi_schema

    settings = ServiceSettings()
    anchors = audit_anchors(cert, settings)
    schema = load_ivi_schema(xsd_path())
    summary, seconds = asyncio.run(audit_archive(settings, schema, anchors))
    log = asyncio.run(audit_log(settings))
    if as_json:
        from cli.output import show_json

        rate = summary.certificates / seconds if seconds else 0.0
        show_json(
            {
                "certificates": summary.certificates,
                "vins": summary.vins,
                "seconds": round(seconds, 2),
                "per_second": round(rate, 1),
                "breaks": [b.__dict__ for b in summary.breaks],
                "seals": [used.__dict__ for used in summary.seals],
                "audit_log": log_json(log),
            }
        )
    else:
        show_audit(summary, seconds)
        show_log(log)
    return FAILED if summary.breaks or not log.ok else 0


def audit_anchors(cert: Path | None, settings: Any) -> list[Any]:
    """``--cert`` and COC_TRUST_DIR's certificates, else the local stack's development seal."""
    from cli.workbench import trust_anchors

    anchors = trust_anchors(cert)
    if anchors:
        return anchors
    from cryptography import x509

    from deploy.local.services import seal_paths

    _key, stack_cert = seal_paths(settings)
    if not stack_cert.is_file():
        raise BadInput("no trust anchor: give --cert (the seal certificate or its CA) or set COC_TRUST_DIR")
    print(
        f"trusting the local stack's development seal {stack_cert} (give --cert for another)", file=sys.stderr
    )
    return x509.load_pem_x509_certificates(stack_cert.read_bytes())


def show_audit(summary: Summary, seconds: float) -> None:
    """The first breaks, then how many of each kind, then the totals."""
    from cli.output import rows, show, table

    for found in summary.breaks[:BREAKS_SHOWN]:
        print(f"BROKEN {found.vin}{' ' + found.record_id if found.record_id else ''}: {found.what}")
    if len(summary.breaks) > BREAKS_SHOWN:
        print(f"… and {len(summary.breaks) - BREAKS_SHOWN:,} more breaks (--json lists every one)")
    kinds = Counter(kind_of(found.what) for found in summary.breaks)
    if kinds:
        counted = ((f"{count:,}", kind) for kind, count in kinds.most_common())
        show(rows(table("breaks", "kind", right=("breaks",), show_header=False), counted))
    if summary.seals:
        used = ((f"{s.certificates:,}", s.subject, s.serial, s.sha256) for s in summary.seals)
        show(rows(table("sealed", "seal subject", "serial", "sha256", right=("sealed",)), used))
    rate = summary.certificates / seconds if seconds else 0.0
    totals = [
        ("certificates checked", f"{summary.certificates:,}"),
        ("vehicles (chains)", f"{summary.vins:,}"),
        ("breaks", f"{len(summary.breaks):,}"),
        ("vehicles with a break", f"{len(summary.broken_vins()):,}"),
        ("seconds", f"{seconds:.1f}"),
        ("certificates / second", f"{rate:.0f}"),
    ]
    show(rows(table("total", "value", right=("value",), show_header=False), totals))


async def audit_archive(settings: Any, schema: Any, anchors: list[Any]) -> tuple[Summary, float]:
    """Stream the archive through the auditor: every certificate, then every chain."""
    from cli.progress import Progress
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
        began = time.monotonic()
        with Progress("audited", every=1.0) as shown:
            async for row in db[COLLECTION].find({}, batch_size=200):
                summary.breaks.extend(auditor.certificate(row))
                summary.certificates += 1
                shown(summary.certificates, max(total, summary.certificates))
            shown(summary.certificates, summary.certificates)
        summary.breaks.extend(auditor.chains(heads))
        summary.vins = len(set(auditor.links) | set(heads))
        summary.seals = sorted(auditor.seals.values(), key=lambda used: -used.certificates)
        return summary, time.monotonic() - began
    finally:
        await client.close()


async def audit_log(settings: Any) -> Verdict:
    """The workspace's audit log walked along its hash chain, read from the database."""
    from services.workspace.adapters.audit import COLLECTION, AuditLog
    from shared.mongo import database, make_client

    client = make_client(settings)
    try:
        _entries, verdict = await AuditLog(database(client, settings)[COLLECTION]).verification()
        return verdict
    finally:
        await client.close()


def show_log(verdict: Verdict) -> None:
    """The audit log's breaks, first first, then its one-line verdict."""
    for found in verdict.breaks[:BREAKS_SHOWN]:
        print(f"BROKEN audit log entry {found.seq}: {found.what}")
    if len(verdict.breaks) > BREAKS_SHOWN:
        print(f"… and {len(verdict.breaks) - BREAKS_SHOWN:,} more audit log breaks (--json lists every one)")
    print(f"audit log: {verdict.summary()}")


def log_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "entries": verdict.entries,
        "head_seq": verdict.head_seq,
        "head_sha256": verdict.head_sha256,
        "before_chain": verdict.before_chain,
        "summary": verdict.summary(),
        "breaks": [{"seq": b.seq, "kind": b.kind.value, "what": b.what} for b in verdict.breaks],
    }
