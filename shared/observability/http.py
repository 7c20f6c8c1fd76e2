"""HTTP requests counted by route template and status: a plain ASGI middleware around a service's app.

Not Starlette's ``BaseHTTPMiddleware``: that one runs the app in a task of its own
and buffers nothing well for a long streamed answer (the workspace's live
events). The route label is the template FastAPI matched (``/v1/records/{vin}``,
never the VIN itself), a mount's path (``/static``) for what a mounted app
answered, or ``unmatched``; a method outside the standard ones is ``other``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shared.observability.metrics import StageMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def route_of(scope: Scope, root_path: str) -> str:
    """The route template the router matched in ``scope`` (it writes its match into the scope)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    mounted = str(scope.get("root_path", ""))
    if len(mounted) > len(root_path) and mounted.startswith(root_path):
        return mounted[len(root_path) :]
    return UNMATCHED


class HttpMetrics:
    """Counts each HTTP request and times it, once its answer is complete (or broken off)."""

    def __init__(self, app: ASGIApp, metrics: StageMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, root_path, status = time.perf_counter(), str(scope.get("root_path", "")), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope.get("method", "")
            method = method if method in METHODS else "other"
            route = route_of(scope, root_path)
            self.metrics.http_requests.labels(method, route, str(status[0])).inc()
            self.metrics.http_seconds.labels(method, route).observe(time.perf_counter() - began)
