"""Intake's pure logic: parse what the MES sends, normalise it, give it its identity."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from services.intake.facets import BuildFacets
from shared.contracts import BuildRecord
from shared.contracts.base import reason_of
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


MAX_PROBLEMS = 20  # problems named in one answer; the rest are counted


def split_body(body: bytes, content_type: str, max_items: int | None = None) -> list[Any]:
    """One JSON object, a JSON list, or NDJSON (one object a line) → the items.

    The body must be UTF-8; more than ``max_items`` items are refused as soon as
    they are counted (an NDJSON line is not parsed past the limit).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError([Problem(0, "(body)", f"not UTF-8 (byte {exc.start})")]) from None
    if "ndjson" in content_type or "jsonl" in content_type:
        items: list[Any] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if max_items is not None and len(items) >= max_items:
                raise BodyError([Problem(number, "(body)", f"more than {max_items} records")])
            items.append(_json(line, number, "(line)"))
        return items
    data = _json(text, 1, "(body)")
    items = data if isinstance(data, list) else [data]
    if max_items is not None and len(items) > max_items:
        raise BodyError([Problem(0, "(body)", f"more than {max_items} records")])
    return items


def _json(text: str, number: int, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError([Problem(number, field, f"not valid JSON at line {exc.lineno}: {exc.msg}")]) from None
    except RecursionError:
        raise BodyError([Problem(number, field, "JSON nested too deeply")]) from None
    except ValueError:  # a number longer than Python converts (4,300 digits)
        raise BodyError([Problem(number, field, "a JSON number too long to read")]) from None


def bounded(problems: list[Problem]) -> list[Problem]:
    """At most MAX_PROBLEMS problems, the rest counted in one more."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], Problem(0, "(body)", f"and {rest} more problems")]


def parse_builds(
    body: bytes, content_type: str, max_items: int | None = None, facets: BuildFacets | None = None
) -> list[BuildRecord]:
    """Every item must keep the contract and, with ``facets``, the schema's facets of each per-vehicle value.

    Otherwise nothing is taken and each problem is named.
    """
    items = split_body(body, content_type, max_items)
    if not items:
        raise BodyError([Problem(0, "(body)", "no build records in the request")])
    builds, problems = [], []
    for number, item in enumerate(items, start=1):
        try:
            build = BuildRecord.model_validate(item)
        except ValidationError as exc:
            problems.extend(problems_of(exc, number))
            continue
        refused = facets.problems(build) if facets is not None else []
        problems.extend(Problem(number, field, message) for field, message in refused)
        builds.append(build)
    if problems:
        raise BodyError(bounded(problems))
    return builds


def oversized(records: Sequence[BaseModel], limit: int) -> list[Problem]:
    """The records too large to publish (the broker refuses them): found before any is published."""
    return [
        Problem(number, "(item)", f"the record is {size} bytes as published; at most {limit} are taken")
        for number, record in enumerate(records, start=1)
        if (size := len(record.model_dump_json())) > limit
    ]


def problems_of(exc: ValidationError, item: int) -> list[Problem]:
    return [
        Problem(item, ".".join(str(p) for p in err["loc"]) or "(item)", reason_of(err))
        for err in exc.errors(include_url=False)
    ]


def identity_of(body: bytes, key: str) -> tuple[str, int]:
    """VIN and revision of a broken message, from its body when they can still be read, else its key.

    For the `rejected` status event of a message that broke the contract.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a number too long, nested too deep
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
