"""Protective headers on every answer of the workspace, and the Secure flag on every cookie it sets.

A pure ASGI middleware (no framework beyond the ASGI message shapes), so it
covers pages, downloads, static files, the live feed and errors alike:

- ``Content-Security-Policy``: scripts, styles, images and live updates only
  from the workspace itself, no inline script or style, no plugins, no
  ``<base>``; forms post only to the workspace (and to the company's sign-in
  page, when one is set); ``frame-ancestors 'none'``: no other site may show
  the workspace in a frame (clickjacking).
- ``X-Frame-Options: DENY``: the same for browsers that predate
  ``frame-ancestors``.
- ``X-Content-Type-Options: nosniff``: a download or an answer is read as the
  type it is sent as, never guessed into script or HTML.
- ``Referrer-Policy: same-origin``: page addresses hold VINs and filters, and
  none leaves for another site; requests within the workspace keep their
  ``Referer`` and, for a form, their ``Origin`` (``no-referrer`` would send
  ``Origin: null``, hiding where a form came from).
- ``Strict-Transport-Security`` when the request came over TLS (directly or
  through a proxy whose forwarded scheme the server trusts): a browser that
  has seen it never uses plain HTTP for the workspace again.
- no ``Server`` header: the launcher tells uvicorn not to send one, and any
  the application set is dropped.

Cookies get ``Secure`` whenever the workspace is not on loopback (a setting, on
by default) or the request came over TLS. On loopback over plain HTTP (the
local demo) the flag is left off, so a browser keeps the session: nobody off
the machine can reach a loopback address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from fastapi import FastAPI

    from services.workspace.settings import WorkspaceSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

HSTS: Final = b"max-age=31536000"  # a year, as browsers' preload lists ask; subdomains are not ours to bind
REFERRER_POLICY: Final = b"same-origin"


def content_security_policy(form_targets: Iterable[str] = ()) -> str:
    """The policy of every answer; ``form_targets``: other origins a form may lead to (the sign-in provider)."""
    forms = " ".join(["'self'", *sorted(set(form_targets))])
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "font-src 'self'",
            f"form-action {forms}",
            "base-uri 'none'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        )
    )


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, or None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable only from this machine."""
    if host.strip("[]").casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost, or 0.0.0.0's spelling: reachable from elsewhere


def install(app: FastAPI, settings: WorkspaceSettings) -> None:
    """Put ``ProtectiveHeaders`` in front of ``app`` as ``settings`` say (where it listens, the sign-in provider)."""
    provider = origin_of(settings.oidc_issuer)
    app.add_middleware(
        ProtectiveHeaders,
        secure_cookies=settings.secure_cookies and not is_loopback(settings.http_host),
        form_targets=[provider] if provider else [],
    )


class ProtectiveHeaders:
    """ASGI middleware: the headers above on every HTTP answer; ``Secure`` on cookies as ``secure_cookies`` says.

    ``secure_cookies``: mark cookies Secure on plain HTTP too (the workspace is
    served off loopback, so TLS is in front of it). Over TLS cookies are always Secure.
    """

    def __init__(self, app: App, *, secure_cookies: bool, form_targets: Iterable[str] = ()) -> None:
        self.app = app
        self.secure_cookies = secure_cookies
        self.policy = content_security_policy(form_targets).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"
        secure = tls or self.secure_cookies

        async def send_protected(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self.protect(message.get("headers", []), tls=tls, secure=secure)
            await send(message)

        await self.app(scope, receive, send_protected)

    def protect(
        self, headers: Iterable[tuple[bytes, bytes]], *, tls: bool, secure: bool
    ) -> list[tuple[bytes, bytes]]:
        kept = [
            (name, with_secure(value, secure) if name.lower() == b"set-cookie" else value)
            for name, value in headers
            if name.lower() not in OWN
        ]
        kept += [
            (b"content-security-policy", self.policy),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", REFERRER_POLICY),
        ]
        if tls:
            kept.append((b"strict-transport-security", HSTS))
        return kept


# Set here and nowhere else: an application's own value of one of these is replaced, a Server header dropped.
OWN: Final = frozenset(
    {
        b"content-security-policy",
        b"x-frame-options",
        b"x-content-type-options",
        b"referrer-policy",
        b"strict-transport-security",
        b"server",
    }
)


def with_secure(cookie: bytes, secure: bool) -> bytes:
    """A Set-Cookie value with the ``Secure`` attribute added (``secure``) or taken away."""
    name_value, *attributes = [part.strip() for part in cookie.split(b";")]
    attributes = [a for a in attributes if a and a.lower() != b"secure"]
    if secure:
        attributes.append(b"Secure")
    return b"; ".join([name_value, *attributes])
