"""Integration tests talk to the real local Kafka and FerretDB (`coc stack up`)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import MongoDoc, make_client
from shared.settings import CocSettings


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def settings() -> CocSettings:
    settings = CocSettings()
    for name, (host, port) in {
        "Kafka": settings.kafka_host_port,
        "MongoDB": settings.mongo_host_port,
    }.items():
        if not _reachable(host, port):
            pytest.fail(f"{name} is not answering on {host}:{port}: run `coc stack up` first")
    return settings


@pytest.fixture
def unique() -> str:
    """A suffix that keeps each test's topics, groups and collections apart."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def test_db(settings: CocSettings, unique: str) -> AsyncIterator[AsyncDatabase[MongoDoc]]:
    """A database of this test only, dropped afterwards."""
    client = make_client(settings)
    name = f"test_{unique}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()
