"""The connections to the authorities: mutual TLS to a NAP, OAuth2 to the VCA, and the archive's certificates.

Each connector turns one send or poll into a ``Reply`` and never raises for
what an authority or the network does: a timeout, a dropped connection, a TLS
handshake refused or a 5xx is a ``TRANSIENT`` reply saying which, for the sender
to retry. The message shapes are in ``services.delivery.nap`` and ``.vca``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from pathlib import Path
from typing import Protocol

import httpx

from services.delivery import nap, vca
from services.delivery.deliver import Answer, Delivery, Reply
from services.delivery.settings import DeliverySettings, Destination
from shared.contracts import Owner

MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c8c1e-4d0a-4c55-9a57-1d5b6f0e2c11")
TOKEN_MARGIN_S = 30.0  # a token this close to its expiry is renewed before use


class ConfigurationError(ValueError):
    """A destination cannot be used as configured (a missing endpoint, file or secret)."""


class Connector(Protocol):
    name: str

    async def send(self, delivery: Delivery, signed_xml: bytes) -> Reply: ...

    async def poll(self, delivery: Delivery) -> Reply: ...

    async def close(self) -> None: ...


def transport_fault(destination: str, exc: Exception) -> Reply:
    """A reply for a call that got no HTTP answer: what happened, in words integration can act on."""
    text = "; ".join(_causes(exc)) or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, httpx.TimeoutException):
        return Reply(Answer.TRANSIENT, f"{destination} did not answer in time ({type(exc).__name__})")
    if any(word in lowered for word in ("certificate", "alert", "handshake", "ssl", "tls")):
        return Reply(
            Answer.TRANSIENT,
            f"TLS with {destination} failed: {text[:300]}; if the access point refused our client "
            "certificate, check client_cert and client_key of this destination",
            owner=Owner.INTEGRATION,
        )
    return Reply(Answer.TRANSIENT, f"connection to {destination} failed: {type(exc).__name__}: {text[:300]}")


def _causes(exc: BaseException) -> list[str]:
    """The messages of an exception and of what caused it (a TLS alert hides a few levels down)."""
    found: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(found) < 5:
        text = str(seen) or type(seen).__name__
        if isinstance(seen, ssl.SSLError) or text not in found:
            found.append(f"{type(seen).__name__}: {text}" if isinstance(seen, ssl.SSLError) else text)
        seen = seen.__cause__ or seen.__context__
    return found


async def tls_refusal(url: str, context: ssl.SSLContext, wait_s: float = 2.0) -> str | None:
    """Why the server refuses our TLS session, if it does; None when it takes it (or cannot be reached).

    Under TLS 1.3 a server checks the client certificate after the handshake,
    so a refused certificate shows in the request as a mere broken connection;
    a fresh session that only listens receives the server's alert instead.
    """
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or 443
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), wait_s
        )
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    except (OSError, TimeoutError):
        return None
    try:
        await asyncio.wait_for(reader.read(1), wait_s)
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
    return None


def message_id(delivery: Delivery) -> str:
    """The same message id for every send of one delivery, so a resend is the same message."""
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, delivery.id))


class NapConnector:
    """A EUCARIS national access point: SOAP over HTTPS with a client certificate (not the seal)."""

    def __init__(self, name: str, destination: Destination, settings: DeliverySettings) -> None:
        self.name = name
        self.url = endpoint(name, destination.endpoints, settings)
        if destination.client_cert is None or destination.client_key is None:
            raise ConfigurationError(
                f"destination {name}: a nap needs client_cert and client_key (mutual TLS)"
            )
        context = ssl.create_default_context(cafile=_existing(name, destination.server_ca))
        secret = settings.delivery_secrets.get(name)
        try:
            context.load_cert_chain(
                _existing(name, destination.client_cert) or "",
                _existing(name, destination.client_key),
                password=secret.get_secret_value() if secret else None,
            )
        except ssl.SSLError as exc:
            raise ConfigurationError(
                f"destination {name}: client certificate or key unusable: {exc}"
            ) from None
        self.context = context
        self.client = httpx.AsyncClient(verify=context, timeout=destination.timeout_s)

    async def send(self, delivery: Delivery, signed_xml: bytes) -> Reply:
        body = nap.envelope(signed_xml, message_id(delivery), delivery.version_number, delivery.corrects)
        try:
            response = await self.client.post(
                self.url, content=body, headers={"Content-Type": nap.CONTENT_TYPE}
            )
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            if not isinstance(exc, httpx.TimeoutException):
                refusal = await tls_refusal(self.url, self.context)
                if refusal is not None:
                    exc = ssl.SSLError(f"the access point refused the TLS session: {refusal}")
            return transport_fault(self.name, exc)
        return nap.read_reply(response.status_code, response.content)

    async def poll(self, delivery: Delivery) -> Reply:
        # An access point answers a send with its outcome; nothing is ever left to poll.
        return Reply(Answer.TRANSIENT, "a NAP delivery has nothing to poll; sending again")

    async def close(self) -> None:
        await self.client.aclose()


class VcaConnector:
    """The UK VCA eCoC API: OAuth2 client credentials, ``POST`` of the XML, ``202``, status polled."""

    def __init__(self, name: str, destination: Destination, settings: DeliverySettings) -> None:
        self.name = name
        environment = settings.delivery_environment
        self.url = endpoint(name, destination.endpoints, settings).rstrip("/")
        self.token_url = endpoint(name, destination.token_urls, settings, "token_urls")
        self.scope = destination.scopes.get(environment)
        secret = settings.delivery_secrets.get(name)
        if not destination.client_id or secret is None:
            raise ConfigurationError(
                f"destination {name}: a vca needs client_id, and its client secret in COC_DELIVERY_SECRETS"
            )
        if not destination.manufacturer_id or not destination.contact_id:
            raise ConfigurationError(f"destination {name}: a vca needs manufacturer_id and contact_id")
        self.client_id, self._secret = destination.client_id, secret
        self.ids = {
            vca.MANUFACTURER_HEADER: destination.manufacturer_id,
            vca.CONTACT_HEADER: destination.contact_id,
        }
        self.client = httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=_existing(name, destination.server_ca)),
            timeout=destination.timeout_s,
        )
        self._token: tuple[str, float] | None = None  # the token and when it expires (monotonic)

    async def _bearer(self, renew: bool = False) -> str:
        if not renew and self._token and self._token[1] - TOKEN_MARGIN_S > time.monotonic():
            return self._token[0]
        form = vca.token_form(self.client_id, self._secret.get_secret_value(), self.scope)
        response = await self.client.post(self.token_url, data=form)
        token, lifetime = vca.read_token(response.status_code, response.content)
        self._token = (token, time.monotonic() + lifetime)
        return token

    async def _call(
        self, method: str, url: str, content: bytes | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response | Reply:
        """One authorised call; a token refused (expired early, revoked) is renewed once."""
        try:
            for renew in (False, True):
                authorised = {**(headers or {}), "Authorization": f"Bearer {await self._bearer(renew)}"}
                response = await self.client.request(method, url, content=content, headers=authorised)
                if response.status_code != 401:
                    break
            return response
        except ValueError as exc:  # the token endpoint refused
            return Reply(Answer.TRANSIENT, str(exc)[:500], owner=Owner.INTEGRATION)
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            return transport_fault(self.name, exc)

    async def send(self, delivery: Delivery, signed_xml: bytes) -> Reply:
        headers = {
            **self.ids,
            "Content-Type": "application/xml",
            **vca.correction_headers(delivery.version_number, delivery.corrects),
        }
        answer = await self._call("POST", self.url + vca.SUBMISSIONS, content=signed_xml, headers=headers)
        if isinstance(answer, Reply):
            return answer
        return vca.read_submission(answer.status_code, answer.content)

    async def poll(self, delivery: Delivery) -> Reply:
        if not delivery.submission_id:
            return Reply(Answer.TRANSIENT, "no submission id to poll")
        answer = await self._call("GET", f"{self.url}{vca.SUBMISSIONS}/{delivery.submission_id}")
        if isinstance(answer, Reply):
            return answer
        return vca.read_status(answer.status_code, answer.content)

    async def close(self) -> None:
        await self.client.aclose()


def endpoint(name: str, urls: dict[str, str], settings: DeliverySettings, what: str = "endpoints") -> str:
    url = urls.get(settings.delivery_environment)
    if not url:
        raise ConfigurationError(
            f"destination {name} has no {what} entry for the {settings.delivery_environment} environment"
        )
    if not url.startswith(("https://", "http://")):
        raise ConfigurationError(f"destination {name}: {url!r} is not an http(s) URL")
    return url


def _existing(name: str, path: Path | None) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise ConfigurationError(f"destination {name}: file {path} not found")
    return str(path)


def connectors(settings: DeliverySettings) -> dict[str, Connector]:
    """One connector per configured destination; ConfigurationError naming the first that cannot be used."""
    made: dict[str, Connector] = {}
    for name, destination in settings.delivery_destinations.items():
        kind = NapConnector if destination.kind == "nap" else VcaConnector
        made[name] = kind(name, destination, settings)
    return made


class Archive:
    """The archive's certificates over its HTTP API (delivery owns no copy of them)."""

    def __init__(self, url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0)

    async def certificate(self, vin: str, revision: int) -> bytes:
        """The signed bytes of one certificate; raises (a transient fault) when the archive does not answer."""
        response = await self.client.get(f"/v1/certificates/{vin}/{revision}")
        response.raise_for_status()
        return response.content

    async def close(self) -> None:
        await self.client.aclose()
