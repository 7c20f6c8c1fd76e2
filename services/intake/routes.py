"""Intake's HTTP entry: builds from an MES, approvals from type-approval, reviews from reviewers."""

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, status
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from services.intake.acceptance import (
    BodyError,
    Problem,
    accept,
    bounded,
    oversized,
    parse_builds,
    problems_of,
    split_body,
)
from services.intake.facets import BuildFacets
from services.intake.settings import IntakeSettings
from services.intake.subscribers import forward
from shared import topics
from shared.auth import Authenticator, Role
from shared.contracts import Approval, BuildRecord
from shared.contracts.approvals import ApprovalSource
from shared.contracts.events import AcceptedRecord, Review, now
from shared.stage import Stage

M = TypeVar("M", bound=BaseModel)
CHUNK = 500  # publishes in flight at once; the producer batches them


# The models the request bodies keep; ``app`` adds their schemas to the OpenAPI components.
BODY_MODELS: tuple[type[BaseModel], ...] = (BuildRecord, Approval, Review)
_PROBLEMS = {
    "type": "object",
    "properties": {
        "detail": {
            "type": "object",
            "properties": {
                "problems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "item": {"type": "integer"},
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                }
            },
        }
    },
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or one no role holds"},
    403: {"description": "The token's role may not send this"},
    413: {
        "description": "The body is over the size limit, or a record is too large to publish; nothing taken",
        "content": {"application/json": {"schema": _PROBLEMS}},
    },
    422: {
        "description": "Problems naming each item and field (at most 20, the rest counted); nothing taken",
        "content": {"application/json": {"schema": _PROBLEMS}},
    },
}


def request_body(model: str, ndjson: bool = False) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that reads its body itself: one item or a JSON list."""
    ref = {"$ref": f"#/components/schemas/{model}"}
    content: dict[str, Any] = {
        "application/json": {"schema": {"anyOf": [ref, {"type": "array", "items": ref, "minItems": 1}]}}
    }
    if ndjson:
        content["application/x-ndjson"] = {
            "schema": {"type": "string", "description": f"one {model} as JSON per line"}
        }
    return {"requestBody": {"required": True, "content": content}}


def router(stage: Stage[IntakeSettings], auth: Authenticator, facets: BuildFacets) -> APIRouter:
    """The HTTP API; each build is checked against ``facets``, the IVI schema's facets of its values."""
    api = APIRouter(prefix="/v1")
    emitter, settings = stage.emitter, stage.settings

    async def received(record: AcceptedRecord) -> None:
        """Forward one posted record in a trace of its own, which its status events name."""
        with stage.tracer.start_as_current_span(f"{topics.BUILDS} receive", kind=trace.SpanKind.SERVER):
            await forward(emitter, record)

    @api.post(
        "/builds",
        status_code=status.HTTP_202_ACCEPTED,
        openapi_extra=request_body("BuildRecord", ndjson=True),
        responses=ANSWERS,
    )
    async def post_builds(
        request: Request, _role: Annotated[Role, Depends(auth.require(Role.MES))]
    ) -> dict[str, Any]:
        """One build record, a JSON list, or NDJSON; all keep the contract or none is taken.

        The contract includes the IVI 2.0 schema's facets of each value the certificate
        carries (a VIN of 17 characters A-Z and 0-9, a colour code 1-10...) and the
        characters a name may hold. 413 for a body over the size limit (before it is
        parsed) and for a record too large to publish; 422 naming each problem (at most
        20, the rest counted) otherwise.
        """
        body = await limited_body(request, settings.max_request_bytes)
        try:
            builds = parse_builds(
                body, request.headers.get("content-type", ""), settings.max_request_records, facets
            )
        except BodyError as exc:
            raise unprocessable(exc.problems) from None
        received_at = now()
        records = [accept(build, received_at) for build in builds]
        refuse_oversized(records, settings.max_record_bytes)
        for start in range(0, len(records), CHUNK):
            await asyncio.gather(*(received(r) for r in records[start : start + CHUNK]))
        return {"accepted": [r.record_id for r in records]}

    @api.post(
        "/approvals",
        status_code=status.HTTP_202_ACCEPTED,
        openapi_extra=request_body("Approval"),
        responses=ANSWERS,
    )
    async def post_approvals(
        request: Request, role: Annotated[Role, Depends(auth.require(Role.TYPE_APPROVAL))]
    ) -> dict[str, Any]:
        """One approval or a JSON list; published to the compacted approvals topic.

        Each is published with its ``source``: the token that sent it (a source in the body is replaced).
        """
        body = await limited_body(request, settings.max_request_bytes)
        source = ApprovalSource(by=f"{role.value} token", via="intake API", at=now())
        posted = parse_items(Approval, body, request.headers.get("content-type", ""))
        approvals = [approval.model_copy(update={"source": source}) for approval in posted]
        refuse_oversized(approvals, settings.max_record_bytes)
        for approval in approvals:
            await emitter.send(topics.APPROVALS, approval, key=approval.key, correlation_id=approval.key)
        return {"accepted": [a.key for a in approvals]}

    @api.post(
        "/reviews",
        status_code=status.HTTP_202_ACCEPTED,
        openapi_extra=request_body("Review"),
        responses=ANSWERS,
    )
    async def post_reviews(
        request: Request, role: Annotated[Role, Depends(auth.require(Role.REVIEWER))]
    ) -> dict[str, Any]:
        """A reviewer's decisions on records waiting for review or held."""
        body = await limited_body(request, settings.max_request_bytes)
        reviews = parse_items(Review, body, request.headers.get("content-type", ""))
        refuse_oversized(reviews, settings.max_record_bytes)
        for review in reviews:
            await emitter.send(
                topics.REVIEWS, review, key=review.vin, correlation_id=f"{review.vin}:{review.revision}"
            )
        return {"accepted": [f"{r.vin}:{r.revision}" for r in reviews]}

    return api


def parse_items(model: type[M], body: bytes, content_type: str) -> list[M]:
    try:
        items = split_body(body, content_type)
    except BodyError as exc:
        raise unprocessable(exc.problems) from None
    parsed, problems = [], []
    for number, item in enumerate(items, start=1):
        try:
            parsed.append(model.model_validate(item))
        except ValidationError as exc:
            problems.extend(problems_of(exc, number))
    if problems or not parsed:
        raise unprocessable(problems or [Problem(0, "(body)", "nothing in the request")])
    return parsed


def unprocessable(problems: list[Problem]) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, {"problems": [p.as_dict() for p in bounded(problems)]}
    )


def refuse_oversized(items: Sequence[BaseModel], limit: int) -> None:
    """413 naming each item too large to publish, before any item is published (all or none)."""
    too_large = oversized(items, limit)
    if too_large:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, {"problems": [p.as_dict() for p in bounded(too_large)]}
        )


async def limited_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it passes ``limit`` bytes (by its declared length, or as it streams)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        {"problems": [Problem(0, "(body)", f"the body is larger than {limit} bytes").as_dict()]},
    )
