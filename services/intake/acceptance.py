"""Intake's pure logic: parse what the MES sends, normalise it, give it its identity."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.contracts import BuildRecord
from shared.contracts.events import AcceptedRecord


class IntakeError(Exception):
    """Base error of the intake service."""


@dataclass(frozen=True)
class Problem:
    """One broken item of a request: which item, which field, why."""

    item: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "field": self.field, "message": self.message}


class BodyError(IntakeError):
    """A request body that breaks the contract; ``problems`` names each field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"item {p.item}: {p.field}: {p.message}" for p in problems))
        self.problems = problems


def accept(build: BuildRecord, received_at: dt.datetime) -> AcceptedRecord:
    """The accepted record: the release time defaults to the time intake received it."""
    if build.released_at is None:
        build = build.model_copy(update={"released_at": received_at})
    return AcceptedRecord(record_id=build.record_id, received_at=received_at, build=build)


def split_body(body: bytes, content_type: str) -> list[Any]:
    """One JSON object, a JSON list, or NDJSON (one object a line) → the items."""
    if "ndjson" in content_type or "jsonl" in content_type:
        items = []
        for number, line in enumerate(body.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BodyError([Problem(number, "(line)", f"not valid JSON: {exc.msg}")]) from None
        return items
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BodyError([Problem(1, "(body)", f"not valid JSON at line {exc.lineno}: {exc.msg}")]) from None
    return data if isinstance(data, list) else [data]


def parse_builds(body: bytes, content_type: str) -> list[BuildRecord]:
    """Every item must keep the contract; otherwise nothing is taken and each problem is named."""
    items = split_body(body, content_type)
    if not items:
        raise BodyError([Problem(0, "(body)", "no build records in the request")])
    builds, problems = [], []
    for number, item in enumerate(items, start=1):
        try:
            builds.append(BuildRecord.model_validate(item))
        except ValidationError as exc:
            problems.extend(problems_of(exc, number))
    if problems:
        raise BodyError(problems)
    return builds


def problems_of(exc: ValidationError, item: int) -> list[Problem]:
    return [
        Problem(item, ".".join(str(p) for p in err["loc"]) or "(item)", err["msg"])
        for err in exc.errors(include_url=False)
    ]


def identity_of(body: bytes, key: str) -> tuple[str, int]:
    """VIN and revision of a broken message, from its body when they can still be read, else its key.

    For the `rejected` status event of a message that broke the contract.
    """
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nesting deeper than Python's stack
        data = None
    if not isinstance(data, dict):
        return key.upper(), 0
    vin, revision = data.get("vin"), data.get("revision", 1)
    return (
        vin.strip().upper() if isinstance(vin, str) and vin.strip() else key.upper(),
        revision if isinstance(revision, int) and revision > 0 else 0,
    )


def key_mismatch(build: BuildRecord, key: str) -> str | None:
    """Why a build does not fit the key it was published with: the key is the VIN (design, "Topics")."""
    if key and key.upper() != build.vin:
        return f"vin: the build's VIN {build.vin} differs from the message key {key[:40]!r}"
    return None
