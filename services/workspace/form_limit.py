"""A form's text field over 1 MB is answered 413, naming the field and the limit, not Starlette's bare 400.

Starlette's form parsers refuse a text field (an URL-encoded field, or a
multipart part that is no file) of more than 1 MB with 400 and a message that
names no field. This ASGI middleware reads the same body alongside, as it
arrives, with the same parser library and the same count (a field's name and
value as sent, before decoding), and stops the request at the first byte over
the limit with ``FieldTooLarge``: an ``HTTPException`` of 413, which FastAPI's
body reading lets through as it is. Files of a multipart form are not counted
here: an upload has its own limit (``routes.upload``). A body the library
cannot parse is left to Starlette, which answers it as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import unquote_plus

from fastapi import HTTPException, status
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, QuerystringParser, parse_options_header

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

FIELD_MAX: Final = 1024 * 1024  # bytes: Starlette's own limit of a text field, refused here first
NAME_SHOWN = 80  # characters of a field's name the message repeats


class FieldTooLarge(HTTPException):
    """A form's text field over the limit: 413, one line naming the field and the limit."""

    def __init__(self, name: str, limit: int) -> None:
        shown = "".join(char for char in name if char.isprintable())[:NAME_SHOWN] or "a form field"
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{shown}: a form field holds at most {limit:,} bytes ({limit // (1024 * 1024)} MB)",
        )


class UrlEncodedWatch:
    """Counts each field of an ``application/x-www-form-urlencoded`` body, its name and value as sent."""

    def __init__(self, limit: int) -> None:
        self.limit, self.name, self.size = limit, bytearray(), 0
        self.parser = QuerystringParser(
            {
                "on_field_start": self._start,
                "on_field_name": self._name,
                "on_field_data": self._data,
            }
        )

    def _start(self) -> None:
        self.name, self.size = bytearray(), 0

    def _name(self, data: bytes, start: int, end: int) -> None:
        self.name += data[start : min(end, start + NAME_SHOWN * 3)]
        self._count(end - start)

    def _data(self, _data: bytes, start: int, end: int) -> None:
        self._count(end - start)

    def _count(self, more: int) -> None:
        self.size += more
        if self.size > self.limit:
            raise FieldTooLarge(unquote_plus(bytes(self.name).decode("latin-1")), self.limit)

    def write(self, chunk: bytes) -> None:
        self.parser.write(chunk)


class MultipartWatch:
    """Counts each text part of a ``multipart/form-data`` body (a part with a file name is not counted)."""

    def __init__(self, boundary: bytes, limit: int) -> None:
        self.limit = limit
        self.header, self.value, self.disposition = b"", b"", b""
        self.name, self.counted, self.size = "", False, 0
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
            },
        )

    def _begin(self) -> None:
        self.disposition, self.name, self.counted, self.size = b"", "", False, 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def _header_end(self) -> None:
        if self.header.lower() == b"content-disposition":
            self.disposition = self.value
        self.header, self.value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        self.counted = b"filename" not in options

    def _data(self, _data: bytes, start: int, end: int) -> None:
        if self.counted:
            self.size += end - start
            if self.size > self.limit:
                raise FieldTooLarge(self.name, self.limit)

    def write(self, chunk: bytes) -> None:
        self.parser.write(chunk)


def watch_for(content_type: bytes, limit: int) -> UrlEncodedWatch | MultipartWatch | None:
    """The watch of a form body of this type; None for any other body."""
    kind, options = parse_options_header(content_type)
    if kind == b"application/x-www-form-urlencoded":
        return UrlEncodedWatch(limit)
    boundary = options.get(b"boundary")
    if kind == b"multipart/form-data" and boundary:
        return MultipartWatch(boundary, limit)
    return None


class FormFieldLimit:
    """ASGI middleware: a form body whose text field passes ``limit`` bytes raises ``FieldTooLarge`` (413)."""

    def __init__(self, app: App, limit: int = FIELD_MAX) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        watch = watch_for(content_type, self.limit) if content_type else None
        if watch is None:
            await self.app(scope, receive, send)
            return

        async def watched() -> Message:
            nonlocal watch
            message = await receive()
            if watch is not None and message["type"] == "http.request":
                try:
                    watch.write(message.get("body", b""))
                except FormParserError:
                    watch = None  # not a form this library reads: Starlette answers it as before
            return message

        await self.app(scope, watched, send)
