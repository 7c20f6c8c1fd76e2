"""The compliance engineer's one-vehicle commands: ``coc check`` and ``coc render``.

This module only wires: it reads files, calls the pure core of validation,
render and signing, and prints. It is an entry point like ``shared.cli``, so
it may reach into several services; no service imports it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.validation.rules import ApprovalTable, blocking, check
from services.validation.settings import ValidationSettings
from shared.cli import CommandError
from shared.contracts import Approval, BuildRecord, Finding
from shared.ivi import IviSchema

Model = TypeVar("Model", bound=BaseModel)


def register(subparsers: Any) -> None:
    check_parser = subparsers.add_parser("check", help="findings for each build record")
    check_parser.add_argument("--approvals", type=Path, required=True, help="approvals.json (a list)")
    check_parser.add_argument("--builds", type=Path, required=True, help="builds.jsonl (one a line)")
    check_parser.add_argument("--json", action="store_true", help="one JSON object a line")
    check_parser.set_defaults(func=run_check)

    render = subparsers.add_parser("render", help="one IVI 2.0 document from a build and its approval")
    render.add_argument("--approvals", type=Path, required=True, help="approvals.json or one approval")
    render.add_argument("--build", type=Path, required=True, help="one build record (JSON)")
    mode = render.add_mutually_exclusive_group(required=True)
    mode.add_argument("--unsigned", action="store_true", help="leave the document unsigned")
    mode.add_argument("--key", type=Path, help="seal key (PKCS#8 PEM)")
    render.add_argument("--cert", type=Path, help="seal certificate (PEM), with --key")
    render.add_argument("--out", type=Path, help="output file (default: standard output)")
    render.set_defaults(func=run_render)


# --- reading input ----------------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_model(model: type[Model], data: Any, where: str) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}" for err in exc.errors()
        )
        raise CommandError(f"{where}: {problems}") from None


def load_json(path: Path) -> Any:
    try:
        return json.loads(read_bytes(path))
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def load_approvals(path: Path) -> list[Approval]:
    data = load_json(path)
    items = data if isinstance(data, list) else [data]
    return [parse_model(Approval, item, f"{path} item {i + 1}") for i, item in enumerate(items)]


def load_builds(path: Path) -> Iterator[BuildRecord]:
    text = read_bytes(path).decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
        yield parse_model(BuildRecord, data, f"{path} line {number}")


def load_schema() -> IviSchema:
    try:
        return IviSchema.load(ValidationSettings().xsd_path())
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None


# --- commands ---------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    """Print the findings of every build; exit 1 when any build has an error."""
    table = ApprovalTable.of(load_schema(), load_approvals(args.approvals))
    settings, today = ValidationSettings().policy(), dt.date.today()
    builds = clean = 0
    for build in load_builds(args.builds):
        findings = check(build, table, settings, today)
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

    schema = load_schema()
    table = ApprovalTable.of(schema, load_approvals(args.approvals))
    build = parse_model(BuildRecord, load_json(args.build), str(args.build))
    findings = check(build, table, ValidationSettings().policy(), dt.date.today())
    errors = blocking(findings)
    if errors:
        for f in errors:
            print(f"{f.owner.value:13} {f.code}: {f.message} [{f.path}]", file=sys.stderr)
        raise CommandError(f"{build.record_id} has {len(errors)} error finding(s); not rendered")
    approval = table.get(build.approval.key)
    assert approval is not None  # an unknown approval is an error finding above
    try:
        document = render(build, approval, version_number=1, schema=schema)
    except RenderError as exc:
        raise CommandError(f"{build.record_id} could not be rendered: {exc}") from None
    if args.key:
        document = sign(document, args.key, args.cert)
    if args.out:
        args.out.write_bytes(document)
        print(f"wrote {args.out} ({len(document)} bytes)", file=sys.stderr)
    else:
        sys.stdout.buffer.write(document)
    return 0


def sign(document: bytes, key: Path, cert: Path | None) -> bytes:
    from services.signing.seal import Seal, SigningError

    if cert is None:
        raise CommandError("--key needs --cert (the seal certificate)")
    try:
        seal = Seal.from_pem(read_bytes(key), read_bytes(cert))
        return seal.sign(document)
    except (SigningError, ValueError) as exc:
        raise CommandError(f"cannot sign: {exc}") from None
