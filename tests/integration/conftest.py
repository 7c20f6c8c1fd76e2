"""Integration tests talk to the real local Kafka and FerretDB (`coc stack up`)."""

from __future__ import annotations

import socket
import uuid

import pytest

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
