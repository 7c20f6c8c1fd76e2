"""Settings of the delivery service: where each certificate goes, and the credentials to get it there.

Every destination, endpoint and credential comes from settings, never from
code: ``COC_DELIVERY_DESTINATIONS`` (JSON, one entry per destination) names
each authority's kind (``nap`` for a EUCARIS national access point, ``vca``
for the UK's Vehicle Certification Agency), the intended countries routed to
it, its endpoint per environment (acceptance, production) and the files of
its transport credentials; ``COC_DELIVERY_SECRETS`` (JSON, destination name →
secret) holds the OAuth2 client secrets and client-key passwords, which are
never logged. ``COC_DELIVERY_ENVIRONMENT`` picks the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.settings import ServiceSettings

Environment = Literal["acceptance", "production"]


class Destination(BaseModel):
    """One authority the certificates of some intended countries go to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["nap", "vca"] = Field(description="nap: EUCARIS national access point (SOAP); vca: UK VCA")
    countries: tuple[str, ...] = Field(
        min_length=1, description="IntendedCountryRegistration codes routed here ('*': every other)"
    )
    endpoints: dict[str, str] = Field(description="Endpoint URL per environment (acceptance, production)")
    timeout_s: float = Field(30.0, gt=0, le=600, description="Longest wait for one answer")
    # nap: mutual TLS with a client certificate (not the seal)
    client_cert: Path | None = Field(None, description="nap: PEM client certificate for mutual TLS")
    client_key: Path | None = Field(None, description="nap: its PEM key (password, if any, in the secrets)")
    server_ca: Path | None = Field(None, description="PEM CAs the endpoint's certificate is checked against")
    # vca: OAuth2 client credentials
    token_urls: dict[str, str] = Field({}, description="vca: OAuth2 token endpoint per environment")
    client_id: str | None = Field(None, description="vca: OAuth2 client id (the secret is in the secrets)")
    scopes: dict[str, str] = Field({}, description="vca: OAuth2 scope per environment")
    manufacturer_id: str | None = Field(None, description="vca: the manufacturer's id at the VCA")
    contact_id: str | None = Field(None, description="vca: the contact's id at the VCA")


class DeliverySettings(ServiceSettings):
    """The delivery service's settings (COC_ environment variables). Secrets are never logged."""

    delivery_environment: Environment = Field("acceptance", description="Which endpoints to use")
    delivery_destinations: dict[str, Destination] = Field(
        {}, description="Destination name → destination (JSON); none: certificates are not delivered"
    )
    delivery_secrets: dict[str, SecretStr] = Field(
        {}, description="Destination name → OAuth2 client secret (vca) or client key password (nap), JSON"
    )
    delivery_unrouted: Literal["report", "ignore"] = Field(
        "report",
        description="A certificate whose country no destination takes: report it (integration must act) "
        "or leave it (delivered by other means)",
    )
    delivery_concurrency: int = Field(8, ge=1, le=256, description="Deliveries in flight at once")
    delivery_scan_s: float = Field(1.0, gt=0, le=60, description="How often due deliveries are looked for")
    delivery_retry_initial_s: float = Field(2.0, gt=0, description="First wait after a technical fault")
    delivery_retry_max_s: float = Field(300.0, gt=0, description="Longest wait between two attempts")
    delivery_poll_s: float = Field(2.0, gt=0, description="Wait between two status polls of a submission")
    delivery_lease_s: float = Field(
        120.0, gt=0, description="How long a delivery in flight is left to its sender before another takes it"
    )
