"""``coc keys dev`` and ``coc verify``: the signing area's commands.

The heavy modules (lxml, cryptography) are imported inside the functions, so building
the ``coc`` parser stays cheap for every other command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shared.cli import CommandError

ALGORITHM_CHOICES = ("rsa-2048", "ecdsa-p256")  # the same as services.signing.keys.ALGORITHMS


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="seal keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    dev = keys_sub.add_parser(
        "dev", help="write a development seal key (seal.key) and self-signed certificate (seal.crt)"
    )
    dev.add_argument("--out", type=Path, required=True, help="folder for seal.key and seal.crt")
    dev.add_argument(
        "--algorithm", choices=ALGORITHM_CHOICES, default="rsa-2048", help="key type (default rsa-2048)"
    )
    dev.add_argument("--force", action="store_true", help="replace existing seal.key and seal.crt")
    dev.set_defaults(func=keys_dev)

    verify = subparsers.add_parser(
        "verify", help="check a signed IVI 2.0 document against the schema and its signature"
    )
    verify.add_argument("file", type=Path, help="signed IVI 2.0 XML document")
    verify.add_argument("--cert", type=Path, help="PEM certificate the document must be sealed with")
    verify.set_defaults(func=verify_file)


def keys_dev(args: argparse.Namespace) -> int:
    from services.signing.keys import CERT_FILE, KEY_FILE, write_dev_seal
    from services.signing.seal import SigningError, certificate_fingerprint

    try:
        seal = write_dev_seal(args.out, algorithm=args.algorithm, force=args.force)
    except (SigningError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"wrote {args.out / KEY_FILE} (mode 0600) and {args.out / CERT_FILE}")
    print(f"certificate sha256 {certificate_fingerprint(seal.certificate)}")
    print("development seal only: never use it for certificates that leave this machine")
    return 0


def verify_file(args: argparse.Namespace) -> int:
    """Exit 0 only when the document is valid as published and its seal verifies."""
    from services.signing.seal import SigningError, verify
    from shared.settings import CocSettings
    from shared.xml import XmlInputError, load_ivi_schema, parse_bytes, validate

    data = _read(args.file)
    cert_pem = _read(args.cert) if args.cert else None
    try:
        schema = load_ivi_schema(CocSettings().xsd_path())
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from exc
    try:
        schema_errors = validate(schema, parse_bytes(data))
        result = verify(data, cert_pem)
    except XmlInputError as exc:
        raise CommandError(f"{args.file}: {exc}") from exc
    except SigningError as exc:
        raise CommandError(str(exc)) from exc

    for error in schema_errors:
        print(f"{args.file}: schema: {error}")
    for reason in result.reasons:
        print(f"{args.file}: signature: {reason}")
    if schema_errors or not result.valid:
        print(f"{args.file}: NOT valid")
        return 1
    print(f"{args.file}: valid against IVI 2.0 as published; signature verifies")
    print(f"sealed with certificate sha256 {result.fingerprint}")
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc
