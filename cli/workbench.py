"""The compliance engineer's one-vehicle commands: ``coc check``, ``coc render``, ``coc verify``
and ``coc ivi import``.

This module only wires: it reads files, calls the pure core of validation, render
and signing (and ``devkit.ivi_import``), and prints. It is an entry point, so it
may reach into several services; no service imports it. The heavy modules (lxml,
pydantic, the rules) are imported inside the commands, so building the parser stays cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.errors import EXIT_STATUS, FAILED, BadInput, CommandError
from cli.inputs import load_approvals, load_build, load_builds, read_bytes, write_file, write_json

if TYPE_CHECKING:
    from services.validation.policy import RulePolicy
    from shared.contracts import Finding
    from shared.ivi import IviSchema

CHECK_EXIT = (
    "Exit status: 0 every build is clean, 1 some build has findings, "
    "2 bad command line or input (an unreadable or invalid file)."
)
VERIFY_EXIT = (
    "Exit status: 0 valid, seal verifies, signer trusted; 1 not valid, seal broken or signer not "
    "trusted; 2 bad command line or input (an unreadable file, not XML, a DTD)."
)
RENDER_EXIT = "Exit status: 0 written, 1 the build has error findings, 2 bad command line or input."

FilePath = click.Path(path_type=Path)
approvals_option = click.option(
    "--approvals", type=FilePath, required=True, help="approvals.json (a list), or one approval"
)


def register(coc: click.Group) -> None:
    for command in (check, render, verify, ivi):
        coc.add_command(command)


@click.group(help="Work with IVI 2.0 documents.")
def ivi() -> None:
    pass


# --- what the commands share ----------------------------------------------------------------------


def xsd_path() -> Path:
    from shared.settings import CocSettings

    try:
        return CocSettings().xsd_path()
    except FileNotFoundError as exc:
        raise BadInput(str(exc)) from None


def load_schema() -> IviSchema:
    from lxml import etree

    from shared.ivi import IviSchema, IviSchemaError
    from shared.settings import XSD_DOWNLOAD_HINT
    from shared.xml import SchemaImportMissing

    path = xsd_path()
    try:
        return IviSchema.load(path)
    except SchemaImportMissing as exc:
        raise BadInput(f"{exc}. {XSD_DOWNLOAD_HINT}") from None
    except (OSError, IviSchemaError, ValueError, etree.LxmlError) as exc:
        raise BadInput(f"the IVI schema {path} cannot be read: {str(exc)[:300]}") from None


def rule_policy() -> RulePolicy:
    """The rule choices of the COC_ settings (check digits, release policy), as the service reads them."""
    from services.validation.settings import ValidationSettings

    return ValidationSettings().policy()


def trust_anchors(cert: Path | None) -> list[Any]:
    """The certificates a seal is trusted by: ``--cert`` and the PEM files of ``COC_TRUST_DIR``."""
    from cryptography import x509

    from shared.settings import CocSettings

    files = [cert] if cert else []
    folder = CocSettings().trust_dir
    if folder is not None:
        if not folder.is_dir():
            raise BadInput(f"COC_TRUST_DIR {folder} is not a folder")
        files += sorted(path for path in folder.iterdir() if path.suffix.lower() in (".pem", ".crt"))
    anchors = []
    for path in files:
        try:
            anchors.extend(x509.load_pem_x509_certificates(read_bytes(path)))
        except ValueError:
            raise BadInput(f"{path}: not a PEM certificate") from None
    return anchors


def safe_name(text: str) -> str:
    """A file name from a VIN as the MES sent it (which may hold anything)."""
    return "".join(c if c.isalnum() else "_" for c in text) or "build"


def dump(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in findings]


# --- commands -------------------------------------------------------------------------------------


@click.command(epilog=CHECK_EXIT)
@approvals_option
@click.option("--builds", type=FilePath, required=True, help="builds.jsonl (one a line), or one build's JSON")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line")
def check(approvals: Path, builds: Path, as_json: bool) -> int:
    """Findings of each build record, checked against its approval.

    The validation service's rules, with the COC_ settings' choices (check
    digits, release policy); each finding names the team that must act.
    """
    from services.validation.rules import ApprovalTable
    from services.validation.rules import check as findings_of

    table = ApprovalTable.of(load_schema(), load_approvals(approvals))
    policy, today = rule_policy(), dt.date.today()
    count = clean = 0
    for build in load_builds(builds):
        findings = findings_of(build, table, policy, today)
        count += 1
        clean += not findings
        if as_json:
            print(json.dumps({"record_id": build.record_id, "findings": dump(findings)}))
        elif findings:
            print(f"{build.record_id} ({build.build_id})")
            for f in findings:
                print(f"  {f.severity.value:7} {f.owner.value:13} {f.code}: {f.message} [{f.path}]")
    if not as_json:
        print(f"{count} builds checked, {clean} without findings, {count - clean} with findings")
    return 0 if clean == count else FAILED


@click.command(epilog=RENDER_EXIT)
@approvals_option
@click.option("--build", type=FilePath, required=True, help="one build record (JSON)")
@click.option("--unsigned", is_flag=True, help="leave the document unsigned (or give --key)")
@click.option("--key", type=FilePath, help="seal key (PKCS#8 PEM), with --cert")
@click.option("--cert", type=FilePath, help="seal certificate (PEM), with --key")
@click.option(
    "--seal-format",
    type=click.Choice(("xmldsig", "xades-b", "xades-t")),
    default="xmldsig",
    help="plain XML-DSig as the EUCARIS set-up manual requires, XAdES baseline B, or baseline T "
    "(a timestamp from COC_TSA_URL, checked against COC_TSA_TRUST)",
)
@click.option("--out", help="output file, or - for standard output (default: out/render/VIN.xml)")
def render(
    approvals: Path,
    build: Path,
    unsigned: bool,
    key: Path | None,
    cert: Path | None,
    seal_format: str,
    out: str | None,
) -> None:
    """One IVI 2.0 document from a build and its approval.

    Sealed with --key and --cert, or left --unsigned. A build with an error
    finding is refused, its findings listed; warnings are said and the document
    is rendered.
    """
    if unsigned == (key is not None):
        raise click.UsageError("give either --unsigned or --key", click.get_current_context())
    if key is not None and cert is None:
        raise click.UsageError("--key needs --cert (the seal certificate)", click.get_current_context())
    from services.render.document import RenderError
    from services.render.document import render as render_document
    from services.validation.rules import ApprovalTable, blocking
    from services.validation.rules import check as findings_of

    schema = load_schema()
    table = ApprovalTable.of(schema, load_approvals(approvals))
    record = load_build(build)
    findings = findings_of(record, table, rule_policy(), dt.date.today())
    errors = blocking(findings)
    if errors:
        for f in errors:
            print(f"{f.owner.value:13} {f.code}: {f.message} [{f.path}]", file=sys.stderr)
        raise CommandError(f"{record.record_id} has {len(errors)} error finding(s); not rendered")
    for f in findings:  # what a reviewer would settle in the pipeline: said, not refused
        print(f"warning  {f.owner.value:13} {f.code}: {f.message} [{f.path}]", file=sys.stderr)
    approval = table.get(record.approval.key)
    assert approval is not None  # an unknown approval is an error finding above
    try:
        document = render_document(record, approval, version_number=1, schema=schema)
    except RenderError as exc:
        raise CommandError(f"{record.record_id} could not be rendered: {exc}") from None
    if key is not None and cert is not None:
        document = sign(document, key, cert, seal_format)
    if out == "-":
        sys.stdout.buffer.write(document)
        return
    target = Path(out) if out else Path("out") / "render" / f"{safe_name(record.vin)}.xml"
    write_file(target, document)
    print(f"wrote {target} ({len(document)} bytes)", file=sys.stderr)


def sign(document: bytes, key: Path, cert: Path, seal_format: str = "xmldsig") -> bytes:
    from services.signing.seal import Seal, SigningError

    try:
        seal = Seal.from_pem(read_bytes(key), read_bytes(cert), format=seal_format)
        if seal_format != "xades-t":
            return seal.sign(document)
    except (SigningError, ValueError) as exc:
        raise BadInput(f"cannot sign: {exc}") from None
    return sign_with_timestamp(seal, document)


def sign_with_timestamp(seal: Any, document: bytes) -> bytes:
    """XAdES-T from the command line: the TSA of COC_TSA_URL and COC_TSA_TRUST, as the service uses."""
    from pydantic import ValidationError

    from services.signing.adapters.keys import SealNotConfigured, load_tsa
    from services.signing.adapters.tsa import TimestampUnavailable
    from services.signing.seal import SigningError
    from services.signing.settings import SigningSettings

    try:
        tsa = load_tsa(SigningSettings(seal_format="xades-t"))
    except (SealNotConfigured, SigningError, ValidationError, OSError) as exc:
        raise BadInput(f"cannot sign: {exc}") from None
    assert tsa is not None
    try:
        return bytes(seal.sign(document, timestamp=tsa))
    except TimestampUnavailable as exc:
        raise CommandError(f"not sealed: {exc}") from None
    except SigningError as exc:
        raise BadInput(f"cannot sign: {exc}") from None
    finally:
        tsa.close()


@click.command(epilog=VERIFY_EXIT)
@click.argument("file", type=FilePath)
@click.option(
    "--cert",
    type=FilePath,
    help="PEM trust anchor: the seal certificate, or the CA that issues it (also: the PEM files "
    "of COC_TRUST_DIR); without one the signer is not trusted and the exit is 1",
)
def verify(file: Path, cert: Path | None) -> int:
    """Check a signed IVI 2.0 document: schema, seal and signer.

    The document must be valid against the IVI 2.0 schema as published, its
    signature must verify, and its signer must be trusted. Trusted means: the certificate in the document is one of the trust anchors
    (--cert, and every PEM certificate in COC_TRUST_DIR) or is issued by one.
    Without an anchor the seal can only be intact: anyone can make a key and a
    certificate that verify, so the signer is not trusted and the exit is 1.
    """
    from shared.xml import XmlInputError, parse_bytes, validate
    from shared.xmldsig import trusted_by
    from shared.xmldsig import verify as verify_seal

    data = read_bytes(file)
    anchors = trust_anchors(cert)
    schema = load_schema().validator
    try:
        schema_errors = validate(schema, parse_bytes(data))
        result = verify_seal(data)
    except XmlInputError as exc:
        raise BadInput(f"{file}: {exc}") from exc

    for error in schema_errors:
        print(f"{file}: schema: {error}")
    for reason in result.reasons:
        print(f"{file}: signature: {reason}")
    distrust = None
    if result.certificate is not None:
        show_signer(result)
        distrust = trusted_by(result.certificate, anchors, dt.datetime.now(dt.UTC))
        if distrust:
            print(f"{file}: signer NOT trusted: {distrust}")
    if schema_errors or not result.valid:
        print(f"{file}: NOT valid")
        return FAILED
    if distrust:
        print(f"{file}: valid against IVI 2.0 as published; signature intact; signer not trusted")
        return FAILED
    print(f"{file}: valid against IVI 2.0 as published; signature verifies; signer trusted")
    return 0


def show_signer(result: Any) -> None:
    from shared.xmldsig import key_usage_text

    signer = result.certificate
    print(f"signer: {signer.subject.rfc4514_string()}")
    print(
        f"signer certificate: sha256 {result.fingerprint}, valid {signer.not_valid_before_utc:%Y-%m-%d} "
        f"to {signer.not_valid_after_utc:%Y-%m-%d}, key usage {key_usage_text(signer)}"
    )


@ivi.command("import", epilog=EXIT_STATUS)
@click.argument("file", type=FilePath)
@click.option(
    "--out",
    type=FilePath,
    default=Path("out/imported"),
    help="folder for approval.json and build.json (with --base: previous_stage.json)",
)
@click.option(
    "--base",
    is_flag=True,
    help="FILE is a base vehicle's signed certificate (the previous stage of a multistage vehicle): check "
    "its schema and seal and write the previous_stage a completed vehicle's build record names",
)
@click.option(
    "--store",
    is_flag=True,
    help="with --base: also keep it in the stack's archive (POST /v1/base-certificates, the MES token)",
)
def ivi_import(file: Path, out: Path, base: bool, store: bool) -> None:
    """Read an IVI 2.0 document into approval.json and build.json.

    The document is read as a homologation tool exports it (a signature is
    ignored); the approval master data and the build record it holds are
    written in the contracts' shape. With --base the document is the previous
    stage's certificate, as the authority gives it to the next-stage
    manufacturer: it must be valid against IVI 2.0 as published and its seal
    intact; its facts go to previous_stage.json. Whether its signer is to be
    trusted is not decided: that is for the authority that gave it.
    """
    if store and not base:
        raise click.UsageError("--store goes with --base", click.get_current_context())
    xml = read_bytes(file)
    if base:
        import_base(file, xml, out, store)
        return
    from devkit.ivi_import import IviImportError, import_document

    schema = load_schema()
    try:
        approval, build = import_document(xml, schema)
    except IviImportError as exc:
        raise BadInput(f"{file}: {exc}") from exc
    write_json(out / "approval.json", approval.model_dump(mode="json"))
    write_json(out / "build.json", build.model_dump(mode="json"))
    print(f"approval {approval.key} -> {out / 'approval.json'}")
    print(f"build {build.vin} -> {out / 'build.json'}")


def import_base(file: Path, xml: bytes, out: Path, store: bool) -> None:
    """``coc ivi import --base``: a previous stage's certificate checked, its facts written (and archived)."""
    from shared.base_certificate import BaseCertificateError, read_base

    try:
        found = read_base(xml, load_schema())
    except BaseCertificateError as exc:
        raise BadInput(f"{file}: {exc}") from exc
    previous = found.previous_stage
    write_json(out / "previous_stage.json", previous.model_dump(mode="json"))
    print(
        f"base certificate {previous.reference_id} (sha256 {previous.sha256}): VIN {previous.vin}, stage "
        f"{previous.stage} ({found.stage_of_completion}) of {previous.manufacturer}, approval "
        f"{previous.approval_number} {previous.type} / {previous.variant} / {previous.version}"
    )
    print(f"seal intact, signed by {found.signer}; the signer is not trusted by this check")
    print(f"previous_stage -> {out / 'previous_stage.json'}")
    if store:
        from cli.client import Client
        from shared.auth import Role

        client = Client()
        url = f"{client.settings.archive_url}/v1/base-certificates"
        answer = client.call("POST", url, Role.MES, headers={"Content-Type": "application/xml"}, content=xml)
        print(
            f"kept in the archive: {url}/{previous.sha256} ({'new' if answer.status_code == 201 else 'known'})"
        )
