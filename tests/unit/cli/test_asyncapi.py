"""The AsyncAPI document is generated from the code and carries the contracts ops teams read."""

from __future__ import annotations

import pytest

from services.launch import asyncapi_document
from shared import topics

pytestmark = pytest.mark.unit


def test_every_topic_is_documented_with_its_contract() -> None:
    document = asyncapi_document()
    addresses = {channel.get("address") for channel in document["channels"].values()}
    assert set(topics.ALL) <= addresses
    schemas = document["components"]["schemas"]
    status = schemas["StatusEvent"]["properties"]
    for field in ("vin", "record_id", "revision", "stage", "state", "findings", "owner", "time", "trace_id"):
        assert field in status, field
        assert status[field].get("description"), f"{field} has no description"
    assert {"BuildRecord", "Approval", "Finding", "DeadLetter"} <= set(schemas)
