"""`coc demo`'s multistage vehicle: the approvals posted, the base certificate imported, the completed build added."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from cli.demo import with_multistage_vehicle
from devkit.multistage import approvals
from shared.auth import Role
from shared.base_certificate import read_base
from shared.ivi import IviSchema
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit


@dataclass
class FakeClient:
    """The stack's intake and archive as the demo calls them, the archive checking as the real one does."""

    schema: IviSchema
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    calls: list[tuple[str, Role, bytes]] = field(default_factory=list)

    def call(
        self, method: str, url: str, role: Role, headers: Any = None, content: bytes = b""
    ) -> httpx.Response:
        self.calls.append((url.split("/v1/")[1], role, content))
        if url.endswith("/v1/approvals"):
            accepted = [item["number"] for item in json.loads(content)]
            return httpx.Response(202, json={"accepted": accepted})
        base = read_base(content, self.schema)
        return httpx.Response(201, json={"previous_stage": base.previous_stage.model_dump(mode="json")})


def test_the_demo_adds_one_completed_vehicle_on_an_imported_base_certificate(schema: IviSchema) -> None:
    client = FakeClient(schema)
    expected = {"OTHERVIN000000001": 1}
    builds = with_multistage_vehicle(client, ("a sample build",), expected)
    assert builds[0] == "a sample build" and len(builds) == 2
    completed = builds[1]
    assert completed.previous_stage is not None and completed.previous_stage.vin == completed.vin
    assert expected == {"OTHERVIN000000001": 1, completed.vin: 1}
    (posted, approval_role, body), (imported, import_role, _xml) = client.calls
    assert (posted, approval_role) == ("approvals", Role.TYPE_APPROVAL)
    assert [a["number"] for a in json.loads(body)] == [a.number for a in approvals()]
    assert (imported, import_role) == ("base-certificates", Role.MES)
