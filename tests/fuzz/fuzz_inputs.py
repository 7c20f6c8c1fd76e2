"""Coverage-guided fuzzing (atheris) of what the pipeline reads from outside.

    python tests/fuzz/fuzz_inputs.py [libFuzzer options] [corpus folder]

The first byte of an input picks the reader: ``x`` the IVI 2.0 import (an XML
document), ``j`` a build record as a Kafka message body, ``b`` an intake request
body (JSON or NDJSON). Each reader may refuse the input with its own error; any
other exception is a crash, which libFuzzer reports with the input that caused it.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["devkit", "shared", "services"]):
    from devkit.ivi_import import IviImportError, import_document
    from services.intake.acceptance import BodyError, parse_builds
    from shared.contracts import BuildRecord
    from shared.ivi import IviSchema
    from shared.kafka import ContractError, parse_as
    from shared.settings import CocSettings

SCHEMA = IviSchema.load(CocSettings().xsd_path())


def one_input(data: bytes) -> None:
    kind, body = data[:1], data[1:]
    if kind == b"x":
        with contextlib.suppress(IviImportError):
            import_document(body, SCHEMA)
    elif kind == b"j":
        with contextlib.suppress(ContractError):
            parse_as(BuildRecord, body)
    elif kind == b"b":
        with contextlib.suppress(BodyError):
            parse_builds(body, "application/x-ndjson" if b"\n" in body[:200] else "application/json", 100)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
