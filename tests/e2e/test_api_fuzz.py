"""Each service's HTTP API under generated requests (schemathesis, from its own OpenAPI document).

Bounded in time: a fixed number of examples per operation. Negative examples (bodies
and parameters that break the documented contract) for every operation, positive
ones for the reads; no answer may be a 5xx or carry a traceback. Positive bodies
are not sent to intake: they would be real builds in the pipeline.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from shared.auth import Role
from tests.e2e.helpers import PrivateStack

pytestmark = pytest.mark.e2e

EXAMPLES = 25
SERVICES = ("intake", "validation", "status", "archive")
ROLE_OF_PATH = {"/v1/builds": Role.MES, "/v1/approvals": Role.TYPE_APPROVAL, "/v1/reviews": Role.REVIEWER}


def operations(stack: PrivateStack, service: str) -> list[tuple[str, object]]:
    base = stack.url(service)
    document = httpx.get(f"{base}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        found.append((f"{operation.method.upper()} {operation.path}", operation))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_generated_requests_never_get_a_server_error_or_a_traceback(
    pipeline: PrivateStack, service: str
) -> None:
    base = pipeline.url(service)
    failures: list[str] = []
    tried = 0
    for label, operation in operations(pipeline, service):
        path = operation.path  # type: ignore[attr-defined]
        method = operation.method.upper()  # type: ignore[attr-defined]
        headers = pipeline.auth(ROLE_OF_PATH.get(path, Role.VIEWER))
        modes = (
            [GenerationMode.NEGATIVE]
            if method != "GET"
            else [GenerationMode.NEGATIVE, GenerationMode.POSITIVE]
        )
        for mode in modes:
            tried += fuzz(operation, mode, base, headers, f"{label} ({mode.value})", failures)
    assert tried > 0
    assert not failures, "\n".join(failures[:10])


def fuzz(
    operation: object,
    mode: GenerationMode,
    base: str,
    headers: dict[str, str],
    label: str,
    failures: list[str],
) -> int:
    """Send EXAMPLES generated requests of one operation; note each 5xx or traceback. Returns how many were sent."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=base, headers=headers, timeout=30)
        if response.status_code >= 500 or "Traceback" in response.text:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")

    try:
        run()
    except Unsatisfiable:  # nothing to break in this operation (no parameters, no body)
        return 0
    return sent
