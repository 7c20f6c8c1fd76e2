"""The other services' HTTP APIs, as the workspace reads them: status and archive, with a viewer token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import httpx

from shared.auth import Role

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
PAGE_TIMEOUT_S = 120.0  # one page of the archive's affected certificates (a scan of its heads on FerretDB)


class PipelineUnavailable(Exception):
    """A service the page needs did not answer; the page says so instead of failing."""


class PipelineApi:
    """Reads of the status and archive services. One client, closed with the workspace."""

    def __init__(
        self,
        status_url: str,
        archive_url: str,
        validation_url: str,
        tokens: dict[Role, str],
        signing_url: str = "",
    ) -> None:
        token = tokens.get(Role.VIEWER)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=TIMEOUT)
        self.status_url, self.archive_url = status_url.rstrip("/"), archive_url.rstrip("/")
        self.validation_url = validation_url.rstrip("/")
        self.signing_url = signing_url.rstrip("/")

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(
        self, url: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> httpx.Response:
        try:
            if timeout is not None:
                return await self._client.get(url, params=params, timeout=timeout)
            return await self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise PipelineUnavailable(f"{url.split('/v1')[0]} did not answer: {type(exc).__name__}") from exc

    async def _json(
        self, url: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        response = await self._get(url, params, timeout)
        if response.status_code == 404:
            return None
        if response.status_code == 503 and "application/json" in response.headers.get("content-type", ""):
            detail = str(response.json().get("detail", ""))[:300]
            raise PipelineUnavailable(f"{url.split('/v1')[0]} is not ready: {detail}")
        if response.status_code != 200:
            raise PipelineUnavailable(f"{url} answered {response.status_code}")
        return response.json()

    async def readiness(self) -> dict[str, Any]:
        found = await self._json(f"{self.status_url}/v1/readiness")
        return found or {}

    async def worklist(self, owner: str, **filters: Any) -> dict[str, Any]:
        params = {"owner": owner, **{k: v for k, v in filters.items() if v not in (None, "")}}
        found = await self._json(f"{self.status_url}/v1/worklist", params)
        return found or {"owner": owner, "items": []}

    async def records_in(self, state: str, **filters: Any) -> dict[str, Any]:
        """The records now in ``state`` (not archived), oldest first, one page."""
        params = {"state": state, **{k: v for k, v in filters.items() if v not in (None, "")}}
        found = await self._json(f"{self.status_url}/v1/records", params)
        return found or {"state": state, "items": []}

    async def facets(self) -> dict[str, Any]:
        """The values the lists' filters can take (groups, codes, record types, countries); {} if unknown."""
        found = await self._json(f"{self.status_url}/v1/facets")
        return found if isinstance(found, dict) else {}

    async def settings_seal(self) -> dict[str, Any] | None:
        """Signing's own seal (of its settings, not of the registry): public facts only; None if not known."""
        if not self.signing_url:
            return None
        found = await self._json(f"{self.signing_url}/v1/seal")
        return found if isinstance(found, dict) else None

    async def record(self, vin: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._json(f"{self.status_url}/v1/records/{vin}")
        return found

    async def pending(self, vin: str) -> dict[str, Any] | None:
        """The build of the VIN as received and validation's decision on it (its newest revision)."""
        found: dict[str, Any] | None = await self._json(f"{self.validation_url}/v1/pending/{vin}")
        return found

    async def policy_defaults(self) -> dict[str, Any]:
        """The release policy validation's settings give groups no change names, with the settings' names."""
        found: dict[str, Any] | None = await self._json(f"{self.validation_url}/v1/policy-defaults")
        return found or {}

    async def waiting_on(self, approval_key: str) -> list[dict[str, Any]]:
        found = await self._json(f"{self.validation_url}/v1/waiting", {"approval_key": approval_key})
        return list((found or {}).get("items", []))

    async def waiting_on_many(self, approval_keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The waiting records of several approval keys (up to 50), asked in one request."""
        if not approval_keys:
            return {}
        found = await self._json(f"{self.validation_url}/v1/waiting", {"approval_key": list(approval_keys)})
        by_key = (found or {}).get("by_key") or {}
        return {key: list(by_key.get(key, [])) for key in approval_keys}

    async def affected(
        self,
        approval_key: str,
        *,
        other_than: str | None = None,
        limit: int = 0,
        after: str | None = None,
        with_build: bool = False,
    ) -> dict[str, Any]:
        """The archive's page of VINs whose newest certificate names ``approval_key`` with another SHA-256.

        ``limit`` 0 asks for the total alone (from the archive's counts, at once); a page may take
        seconds on FerretDB, which scans the heads for it, so it is given ``PAGE_TIMEOUT_S``.
        """
        params: dict[str, Any] = {"approval_key": approval_key, "limit": limit}
        if other_than:
            params["other_than"] = other_than
        if after:
            params["after"] = after
        if with_build:
            params["with_build"] = "true"
        found = await self._json(
            f"{self.archive_url}/v1/certificates", params, PAGE_TIMEOUT_S if limit else None
        )
        return found or {"total": 0, "items": [], "next": None}

    async def certificate(self, vin: str, revision: int | None = None) -> Certificate | None:
        """A certificate exactly as archived (bytes and the archive's headers), or None."""
        url = f"{self.archive_url}/v1/certificates/{vin}" + (f"/{revision}" if revision else "")
        response = await self._get(url)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PipelineUnavailable(f"{url} answered {response.status_code}")
        return Certificate.of(response)

    async def base_certificate(self, sha256: str) -> bytes | None:
        """An imported base certificate of a multistage vehicle, exactly as imported, or None."""
        url = f"{self.archive_url}/v1/base-certificates/{sha256}"
        response = await self._get(url)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PipelineUnavailable(f"{url} answered {response.status_code}")
        return response.content

    async def evidence(self, vin: str, revision: int | None = None) -> bytes | None:
        """The release evidence ZIP of a certificate, as the archive makes it; None when there is none."""
        url = f"{self.archive_url}/v1/evidence/{vin}" + (f"/{revision}" if revision else "")
        response = await self._get(url)
        if response.status_code in (404, 409):
            return None
        if response.status_code != 200:
            raise PipelineUnavailable(f"{url} answered {response.status_code}")
        return response.content


class Certificate:
    """A signed certificate as the archive serves it."""

    def __init__(self, xml: bytes, headers: dict[str, str]) -> None:
        self.xml = xml
        self.revision = int(headers.get("x-coc-revision", "0") or 0)
        self.sha256 = headers.get("x-coc-sha256", "")
        self.previous_sha256 = headers.get("x-coc-previous-sha256", "") or None
        self.signer_fingerprint = headers.get("x-coc-signer-fingerprint", "")
        self.version_number = headers.get("x-coc-version-number", "")
        archived = headers.get("x-coc-archived-at")
        self.archived_at = dt.datetime.fromisoformat(archived) if archived else None

    @classmethod
    def of(cls, response: httpx.Response) -> Certificate:
        return cls(response.content, {k.lower(): v for k, v in response.headers.items()})
