"""The readiness board: its page, its numbers as JSON, and the live updates of open pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from services.workspace import live
from services.workspace.destinations import destinations_of, live_cells
from services.workspace.record_types import record_types_of
from services.workspace.routes.answers import render
from services.workspace.routes.deps import VIN_MAX, Feed, Pipeline, Reads, Settings, Visitor
from services.workspace.routes.views import DELIVERIES, STATES, BoardPage, board_view

router = APIRouter(tags=["board"])


@router.get("/", response_class=HTMLResponse)
async def board(request: Request, who: Visitor, api: Pipeline, reads: Reads) -> HTMLResponse:
    readiness = await reads.read(api.readiness(), {})
    destinations = destinations_of(readiness, STATES, [state for state, _ in DELIVERIES])
    page = BoardPage(
        board=board_view(readiness),
        problem=reads.problem,
        destinations=destinations,
        record_types=record_types_of(readiness, STATES),
    )
    return render(request, who, page)


@router.get("/board.json")
async def board_json(who: Visitor, api: Pipeline, settings: Settings) -> dict[str, Any]:
    readiness = await api.readiness()
    return {**board_view(readiness, settings.plant_zone()).as_json(), "destinations": live_cells(readiness)}


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: a status change of the board (or of one VIN)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def live_updates(
    request: Request, who: Visitor, feed: Feed, vin: Annotated[str | None, Query(max_length=VIN_MAX)] = None
) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async with feed.listen(vin.upper() if vin else None) as listener:
            async for chunk in live.stream(listener, request.is_disconnected):
                yield chunk

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
