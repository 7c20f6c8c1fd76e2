"""Delivery's HTTP: a VIN's deliveries for any reader, bounded input, 404 when there is none."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.delivery import routes
from services.delivery.deliver import Delivery, Step
from shared.auth import Authenticator, Role

pytestmark = pytest.mark.unit


class Ledger:
    async def of_vin(self, vin: str) -> list[Delivery]:
        if vin != "VIN1":
            return []
        return [
            Delivery("VIN1:1:nap", "VIN1", 1, "VIN1:1", 1, "ref", "ab", "nap", Step.DELIVERED, claim="secret")
        ]


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    app.include_router(routes.router(Ledger(), Authenticator({Role.VIEWER: "t"})))  # type: ignore[arg-type]
    return TestClient(app)


def test_a_reader_gets_the_vins_deliveries_without_the_senders_claim(client: TestClient) -> None:
    answer = client.get("/v1/deliveries/vin1", headers={"Authorization": "Bearer t"})
    assert answer.status_code == 200, answer.text
    (one,) = answer.json()["deliveries"]
    assert (one["record_id"], one["step"], one["destination"]) == ("VIN1:1", "delivered", "nap")
    assert "claim" not in one


def test_no_token_unknown_vin_and_a_non_vin_are_told_apart(client: TestClient) -> None:
    assert client.get("/v1/deliveries/VIN1").status_code == 401
    auth = {"Authorization": "Bearer t"}
    assert client.get("/v1/deliveries/VIN2", headers=auth).status_code == 404
    assert client.get("/v1/deliveries/" + "A" * 40, headers=auth).status_code == 422
