"""The delivery receipts of a VIN, asked of the delivery service when an evidence bundle is made."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from shared.auth import Role


class DeliveryReceipts:
    def __init__(self, url: str, tokens: dict[Role, str]) -> None:
        token = tokens.get(Role.VIEWER)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=url, headers=headers, timeout=10.0)

    async def of_vin(self, vin: str) -> Sequence[dict[str, Any]] | str:
        """The VIN's deliveries with their receipts, or why there are none (said in the bundle)."""
        try:
            response = await self.client.get(f"/v1/deliveries/{vin}")
        except httpx.HTTPError as exc:
            return f"the delivery service did not answer ({type(exc).__name__}): receipts not included"
        if response.status_code == 404:
            return "not delivered (yet): no delivery of this VIN is recorded"
        if response.status_code != 200:
            return f"the delivery service answered HTTP {response.status_code}: receipts not included"
        deliveries: list[dict[str, Any]] = response.json().get("deliveries", [])
        return deliveries

    async def close(self) -> None:
        await self.client.aclose()
