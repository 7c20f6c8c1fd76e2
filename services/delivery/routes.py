"""Delivery's HTTP: a VIN's deliveries with their receipts (the release evidence reads them)."""

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from services.delivery.adapters.ledger import Ledger
from shared.auth import Authenticator, Role

MAX_VIN = 32  # as the contracts bound a VIN
ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or one no role holds"},
    404: {"description": "No delivery of that VIN"},
    422: {"description": "Not a VIN"},
}


def router(ledger: Ledger, auth: Authenticator) -> APIRouter:
    api = APIRouter(prefix="/v1")
    reader = Depends(auth.require())

    @api.get("/deliveries/{vin}", responses=ANSWERS)
    async def of_vin(vin: str, _role: Annotated[Role, reader]) -> dict[str, Any]:
        """Every delivery of the VIN's certificates: destination, state, attempts and each receipt."""
        if len(vin) > MAX_VIN or not vin.isalnum():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "vin: not a VIN")
        found = await ledger.of_vin(vin.upper())
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no delivery of {vin.upper()}")
        return {"vin": vin.upper(), "deliveries": [public(asdict(d)) for d in found]}

    return api


def public(entry: dict[str, Any]) -> dict[str, Any]:
    """A ledger entry as the API shows it (without the sender's claim token)."""
    entry.pop("claim", None)
    entry["step"] = str(entry["step"])
    return entry
