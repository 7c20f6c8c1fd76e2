"""Validation's ``/v1/waiting``: the records waiting on one approval key, or on several in one read."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.validation import routes
from services.validation.policy import PolicyInForce
from services.validation.settings import ValidationSettings
from shared.auth import Authenticator, Role

pytestmark = pytest.mark.unit
TOKEN = "viewer-token"


class Waiting:
    """The pending store's read of waiting records, counting its reads."""

    def __init__(self, by_key: dict[str, list[str]]) -> None:
        self.by_key, self.reads = by_key, 0

    async def waiting_on_any(self, keys: Sequence[str]) -> dict[str, list[SimpleNamespace]]:
        self.reads += 1
        return {
            k: [SimpleNamespace(build=SimpleNamespace(vin=v, revision=1)) for v in self.by_key[k]]
            for k in keys
            if k in self.by_key
        }


def client(pending: Waiting) -> TestClient:
    app = FastAPI()
    auth = Authenticator({Role.VIEWER: TOKEN})
    app.include_router(routes.router(pending, auth, PolicyInForce(ValidationSettings().policy())))  # type: ignore[arg-type]
    return TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})


def test_several_keys_are_answered_by_key_from_one_read_and_one_key_as_before() -> None:
    pending = Waiting({"A|T|V|1": ["VIN2", "VIN1"], "B|T|V|1": ["VIN3"]})
    api = client(pending)

    several = api.get("/v1/waiting", params={"approval_key": ["A|T|V|1", "B|T|V|1", "C|T|V|1"]}).json()
    one = api.get("/v1/waiting", params={"approval_key": "B|T|V|1"}).json()

    assert several["by_key"] == {
        "A|T|V|1": [{"vin": "VIN1", "revision": 1}, {"vin": "VIN2", "revision": 1}],
        "B|T|V|1": [{"vin": "VIN3", "revision": 1}],
        "C|T|V|1": [],
    }
    assert one["approval_key"] == "B|T|V|1" and one["items"] == [{"vin": "VIN3", "revision": 1}]
    assert pending.reads == 2


def test_more_keys_than_a_page_asks_for_are_refused_naming_the_parameter() -> None:
    keys = [f"K{n}|T|V|1" for n in range(routes.MAX_WAITING_KEYS + 1)]
    answer = client(Waiting({})).get("/v1/waiting", params={"approval_key": keys})
    assert answer.status_code == 422 and "approval_key" in answer.text
