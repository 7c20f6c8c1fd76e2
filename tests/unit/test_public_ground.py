"""The product uses FastStream and aiokafka only through their public API (issue 26).

Reaching into a library's private attributes, or replacing its methods, works
with one exact version and breaks at run time after an upgrade, with no test
saying why. The real-broker tests (tests/integration/shared) pin the behaviour
the runtime relies on; this test keeps the code on that public ground.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("services", "shared", "cli", "deploy", "devkit", "bench")
LIBRARIES = ("faststream", "aiokafka")
# Private attributes of the libraries' objects (FastStream's producer inside its broker, aiokafka's
# coordinator and fetcher; any private attribute of a broker, consumer, producer or subscriber), and
# the subscriber method the old runtime replaced.
PRIVATE_REACH = re.compile(
    r"\.(_producer|_coordinator|_fetcher|_subscription|_outer_config|_connection_args)\b"
    r"|\b(broker|consumer|producer|subscriber|admin)\._[a-z]\w*"
    r"|\.get_msg\s*=|\bsetattr\([^)]*[\"']get_msg[\"']"
)

pytestmark = pytest.mark.unit


def private_imports(source: str) -> list[str]:
    """Modules of FastStream or aiokafka imported by a private path (a part starting with ``_``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] in LIBRARIES and any(part.startswith("_") for part in parts[1:]):
                found.append(name)
    return found


def offences(source: str) -> list[str]:
    return private_imports(source) + [m.group(0) for m in PRIVATE_REACH.finditer(source)]


def test_the_check_finds_what_the_old_runtime_did() -> None:
    assert offences("producer = fast._producer.producer") == ["._producer"]
    assert offences("subscriber.get_msg = get_msg") == [".get_msg ="]
    assert offences("from faststream._internal.endpoint import x") == [
        "faststream._internal.endpoint",
        "faststream._internal.endpoint.x",
    ]
    assert offences("consumer._client.force_metadata_update()") == ["consumer._client"]
    assert offences("from aiokafka import AIOKafkaConsumer\nconsumer.commit(offsets)") == []
    assert offences("self._client = httpx.AsyncClient()") == []  # the product's own private attributes


def test_no_module_of_the_product_reaches_into_faststream_or_aiokafka() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {offence}"
        for folder in CHECKED
        for path in sorted((ROOT / folder).rglob("*.py"))
        for offence in offences(path.read_text(encoding="utf-8"))
    ]
    assert not found, "use the public API instead: " + "; ".join(found)
