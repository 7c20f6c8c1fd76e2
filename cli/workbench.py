"""The compliance engineer's one-vehicle commands: ``coc check``, ``coc render``, ``coc verify``
and ``coc ivi import``.

This module only wires: it reads files, calls the pure core of validation, render
and signing (and ``devkit.ivi_import``), and prints. It is an entry point, so it
may reach into several services; no service imports it. The heavy modules (lxml,
the rules) are imported inside the commands, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from cli.main import CommandError
from shared.contracts import Approval, BuildRecord, Finding

if TYPE_CHECKING:
    from services.validation.policy import RulePolicy
    from shared.ivi import IviSchema

Model = TypeVar("Model", bound=BaseModel)
CHECK_EXIT_CODES = (
    "exit status: 0 every build is clean, 1 some build has findings, "
    "2 bad input (an unreadable or invalid file)"
)


def register(subparsers: Any) -> None:
    check_parser = subparsers.add_parser(
        "check",
        help="findings for each build record (exit 0 clean, 1 findings, 2 bad input)",
        description="Check each build record against its approval with the validation rules and "
        "print the findings.",
        epilog=CHECK_EXIT_CODES,
    )
    check_parser.add_argument("--approvals", type=Path, required=True, help="approvals.json (a list)")
    check_parser.add_argument(
        "--builds", type=Path, required=True, help="builds.jsonl (one a line), or one build's JSON"
    )
    check_parser.add_argument("--json", action="store_true", help="one JSON object a line")
    check_parser.set_defaults(func=run_check)

    render = subparsers.add_parser("render", help="one IVI 2.0 document from a build and its approval")
    render.add_argument("--approvals", type=Path, required=True, help="approvals.json or one approval")
    render.add_argument("--build", type=Path, required=True, help="one build record (JSON)")
    mode = render.add_mutually_exclusive_group(required=True)
    mode.add_argument("--unsigned", action="store_true", help="leave the document unsigned")
    mode.add_argument("--key", type=Path, help="seal key (PKCS#8 PEM)")
    render.add_argument("--cert", type=Path, help="seal certificate (PEM), with --key")
    render.add_argument(
        "--seal-format",
        choices=("xmldsig", "xades-b"),
        default="xmldsig",
        help="plain XML-DSig as the EUCARIS set-up manual requires (default), or XAdES baseline B",
    )
    render.add_argument("--out", help="output file, or - for standard output (default: out/render/<VIN>.xml)")
    render.set_defaults(func=run_render)

    verify = subparsers.add_parser(
        "verify",
        help="check a signed IVI 2.0 document against the schema, its signature and the trusted signers",
    )
    verify.add_argument("file", type=Path, help="signed IVI 2.0 XML document")
    verify.add_argument(
        "--cert",
        type=Path,
        help="PEM trust anchor: the seal certificate, or the CA that issues it (also: the PEM files "
        "of COC_TRUST_DIR); without one the signer is not trusted and the exit is 1",
    )
    verify.set_defaults(func=run_verify)

    ivi = subparsers.add_parser("ivi", help="work with IVI 2.0 documents")
    ivi_commands = ivi.add_subparsers(dest="ivi_command", required=True)
    importer = ivi_commands.add_parser(
        "import",
        help="read an IVI 2.0 document into approval.json and build.json",
        description="Read an IVI 2.0 document (as a homologation tool exports it; a signature is "
        "ignored) and write the approval master data and the build record it holds.",
    )
    importer.add_argument("file", type=Path, help="the IVI 2.0 XML document")
    importer.add_argument(
        "--out",
        type=Path,
        default=Path("out/imported"),
        help="folder for approval.json and build.json (default: out/imported)",
    )
    importer.set_defaults(func=run_import)


# --- reading input ----------------------------------------------------------------------------


MAX_INPUT_BYTES = 64_000_000  # a file a command reads whole; larger is refused before it is read


def read_bytes(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    try:
        if path.is_file() and path.stat().st_size > limit:
            raise CommandError(f"cannot read {path}: larger than {limit} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"cannot read {path}: it is a folder") from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None


def utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{where}: not UTF-8 (byte {exc.start})") from None


def json_of(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise CommandError(f"{where}: JSON nested too deeply") from None


def parse_model(model: type[Model], data: Any, where: str) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}" for err in exc.errors()
        )
        raise CommandError(f"{where}: {problems}") from None


def load_json(path: Path) -> Any:
    return json_of(utf8(read_bytes(path), str(path)), str(path))


def load_approvals(path: Path) -> list[Approval]:
    data = load_json(path)
    items = data if isinstance(data, list) else [data]
    return [parse_model(Approval, item, f"{path} item {i + 1}") for i, item in enumerate(items)]


def load_builds(path: Path) -> Iterator[BuildRecord]:
    """The builds of a JSON Lines file, or of a file that is one build (``coc ivi import``'s build.json) or a list."""
    data = read_bytes(path)
    try:
        whole = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        whole = None  # JSON Lines (or broken: each line says where)
    if isinstance(whole, dict | list):
        items = whole if isinstance(whole, list) else [whole]
        for number, item in enumerate(items, start=1):
            yield parse_model(BuildRecord, item, f"{path} item {number}")
        return
    for number, raw in enumerate(data.splitlines(), start=1):
        line = utf8(raw, f"{path} line {number}")
        if not line.strip():
            continue
        yield parse_model(BuildRecord, json_of(line, f"{path} line {number}"), f"{path} line {number}")


def xsd_path() -> Path:
    from shared.settings import CocSettings

    try:
        return CocSettings().xsd_path()
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None


def load_schema() -> IviSchema:
    from lxml import etree

    from shared.ivi import IviSchema, IviSchemaError
    from shared.settings import XSD_DOWNLOAD_HINT
    from shared.xml import SchemaImportMissing

    path = xsd_path()
    try:
        return IviSchema.load(path)
    except SchemaImportMissing as exc:
        raise CommandError(f"{exc}. {XSD_DOWNLOAD_HINT}") from None
    except (OSError, IviSchemaError, ValueError, etree.LxmlError) as exc:
        raise CommandError(f"the IVI schema {path} cannot be read: {str(exc)[:300]}") from None


def rule_policy() -> RulePolicy:
    """The rule choices of the COC_ settings (check digits, release policy), as the service reads them."""
    from services.validation.settings import ValidationSettings

    return ValidationSettings().policy()


# --- commands ---------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    """Print the findings of every build; exit 0 when none has any, 1 when some has, 2 on bad input."""
    from services.validation.rules import ApprovalTable, check

    table = ApprovalTable.of(load_schema(), load_approvals(args.approvals))
    policy, today = rule_policy(), dt.date.today()
    builds = clean = 0
    for build in load_builds(args.builds):
        findings = check(build, table, policy, today)
        builds += 1
        clean += not findings
        if args.json:
            print(json.dumps({"record_id": build.record_id, "findings": dump(findings)}))
        elif findings:
            print(f"{build.record_id} ({build.build_id})")
            for f in findings:
                print(f"  {f.severity.value:7} {f.owner.value:13} {f.code}: {f.message} [{f.path}]")
    if not args.json:
        print(f"{builds} builds checked, {clean} without findings, {builds - clean} with findings")
    return 0 if clean == builds else 1


def dump(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in findings]


def run_render(args: argparse.Namespace) -> int:
    """Render one document; refuse, with the findings, a build that has an error."""
    from services.render.document import RenderError, render
    from services.validation.rules import ApprovalTable, blocking, check

    schema = load_schema()
    table = ApprovalTable.of(schema, load_approvals(args.approvals))
    build = parse_model(BuildRecord, load_json(args.build), str(args.build))
    findings = check(build, table, rule_policy(), dt.date.today())
    errors = blocking(findings)
    if errors:
        for f in errors:
            print(f"{f.owner.value:13} {f.code}: {f.message} [{f.path}]", file=sys.stderr)
        raise CommandError(f"{build.record_id} has {len(errors)} error finding(s); not rendered")
    for f in findings:  # what a reviewer would settle in the pipeline: said, not refused
        print(f"warning  {f.owner.value:13} {f.code}: {f.message} [{f.path}]", file=sys.stderr)
    approval = table.get(build.approval.key)
    assert approval is not None  # an unknown approval is an error finding above
    try:
        document = render(build, approval, version_number=1, schema=schema)
    except RenderError as exc:
        raise CommandError(f"{build.record_id} could not be rendered: {exc}") from None
    if args.key:
        document = sign(document, args.key, args.cert, args.seal_format)
    if args.out == "-":
        sys.stdout.buffer.write(document)
        return 0
    out = Path(args.out) if args.out else Path("out") / "render" / f"{safe_name(build.vin)}.xml"
    write_file(out, document)
    print(f"wrote {out} ({len(document)} bytes)", file=sys.stderr)
    return 0


def safe_name(text: str) -> str:
    """A file name from a VIN as the MES sent it (which may hold anything)."""
    return "".join(c if c.isalnum() else "_" for c in text) or "build"


def write_file(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise CommandError(f"{path}: cannot write ({exc.strerror})") from None


def sign(document: bytes, key: Path, cert: Path | None, seal_format: str = "xmldsig") -> bytes:
    from services.signing.seal import Seal, SigningError

    if cert is None:
        raise CommandError("--key needs --cert (the seal certificate)")
    try:
        seal = Seal.from_pem(read_bytes(key), read_bytes(cert), format=seal_format)
        return seal.sign(document)
    except (SigningError, ValueError) as exc:
        raise CommandError(f"cannot sign: {exc}") from None


def run_verify(args: argparse.Namespace) -> int:
    """Exit 0 only when the document is valid as published, its seal verifies and its signer is trusted.

    Trusted means: the certificate in the document is one of the trust anchors
    (``--cert``, and every PEM certificate in ``COC_TRUST_DIR``) or is issued by
    one. Without an anchor the seal can only be intact: anyone can make a key and
    a certificate that verify, so the signer is not trusted and the exit is 1.
    """
    from shared.xml import XmlInputError, parse_bytes, validate
    from shared.xmldsig import key_usage_text, trusted_by, verify

    data = read_bytes(args.file)
    anchors = trust_anchors(args.cert)
    schema = load_schema().validator
    try:
        schema_errors = validate(schema, parse_bytes(data))
        result = verify(data)
    except XmlInputError as exc:
        raise CommandError(f"{args.file}: {exc}") from exc

    for error in schema_errors:
        print(f"{args.file}: schema: {error}")
    for reason in result.reasons:
        print(f"{args.file}: signature: {reason}")
    signer = result.certificate
    distrust = None
    if signer is not None:
        now = dt.datetime.now(dt.UTC)
        print(f"signer: {signer.subject.rfc4514_string()}")
        print(
            f"signer certificate: sha256 {result.fingerprint}, valid {signer.not_valid_before_utc:%Y-%m-%d} "
            f"to {signer.not_valid_after_utc:%Y-%m-%d}, key usage {key_usage_text(signer)}"
        )
        distrust = trusted_by(signer, anchors, now)
        if distrust:
            print(f"{args.file}: signer NOT trusted: {distrust}")
    if schema_errors or not result.valid:
        print(f"{args.file}: NOT valid")
        return 1
    if distrust:
        print(f"{args.file}: valid against IVI 2.0 as published; signature intact; signer not trusted")
        return 1
    print(f"{args.file}: valid against IVI 2.0 as published; signature verifies; signer trusted")
    return 0


def trust_anchors(cert: Path | None) -> list[Any]:
    """The certificates a seal is trusted by: ``--cert`` and the PEM files of ``COC_TRUST_DIR``."""
    from cryptography import x509

    from shared.settings import CocSettings

    files = [cert] if cert else []
    folder = CocSettings().trust_dir
    if folder is not None:
        if not folder.is_dir():
            raise CommandError(f"COC_TRUST_DIR {folder} is not a folder")
        files += sorted(path for path in folder.iterdir() if path.suffix.lower() in (".pem", ".crt"))
    anchors = []
    for path in files:
        try:
            anchors.extend(x509.load_pem_x509_certificates(read_bytes(path)))
        except ValueError:
            raise CommandError(f"{path}: not a PEM certificate") from None
    return anchors


def run_import(args: argparse.Namespace) -> int:
    """An existing IVI 2.0 document as approval and build record JSON (the contracts' shape)."""
    from devkit.ivi_import import IviImportError, import_document

    xml = read_bytes(args.file)
    schema = load_schema()
    try:
        approval, build = import_document(xml, schema)
    except IviImportError as exc:
        raise CommandError(f"{args.file}: {exc}") from exc
    out: Path = args.out
    write_json(out / "approval.json", approval.model_dump(mode="json"))
    write_json(out / "build.json", build.model_dump(mode="json"))
    print(f"approval {approval.key} -> {out / 'approval.json'}")
    print(f"build {build.vin} -> {out / 'build.json'}")
    return 0


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_file(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
