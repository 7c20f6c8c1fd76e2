"""``coc ivi import FILE --out DIR``: an existing IVI 2.0 document as approval and build record JSON.

The two files hold the contracts as JSON (``Approval``, ``BuildRecord``), so a certificate
exported by a homologation tool can seed the approval master data and a first build record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shared.cli import CommandError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``coc ivi import``."""
    ivi = subparsers.add_parser("ivi", help="work with IVI 2.0 documents")
    ivi_commands = ivi.add_subparsers(dest="ivi_command", required=True)
    importer = ivi_commands.add_parser(
        "import",
        help="read an IVI 2.0 document into approval.json and build.json",
        description="Read an IVI 2.0 document (as a homologation tool exports it; a signature is "
        "ignored) and write the approval master data and the build record it holds.",
    )
    importer.add_argument("file", type=Path, help="the IVI 2.0 XML document")
    importer.add_argument("--out", type=Path, required=True, help="folder for approval.json and build.json")
    importer.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    # Imported here so `coc stack up` and friends never load the XML stack (shared.cli).
    from services.intake.ivi_import import IviImportError, import_document
    from shared.ivi import IviSchema
    from shared.settings import CocSettings

    xml = _read(args.file)
    try:
        schema = IviSchema.load(CocSettings().xsd_path())
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from exc
    try:
        approval, build = import_document(xml, schema)
    except IviImportError as exc:
        raise CommandError(f"{args.file}: {exc}") from exc
    out: Path = args.out
    _write(out / "approval.json", approval.model_dump(mode="json"))
    _write(out / "build.json", build.model_dump(mode="json"))
    print(f"approval {approval.key} -> {out / 'approval.json'}")
    print(f"build {build.vin} -> {out / 'build.json'}")
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read ({exc.strerror})") from None


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{path}: cannot write ({exc.strerror})") from None
