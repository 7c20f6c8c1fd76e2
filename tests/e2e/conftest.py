"""A private stack for the pipeline tests: its own state folder and ports, started as a user does.

Only tests that ask for ``pipeline`` (or ``private_stack``) start it, once per
session; ``coc stack down`` stops it at the end of the session, also when a test
failed. A developer's stack on the default ports and ``.state`` is never touched.
The state folder (logs of every process) is removed after a green session and
kept, with its path printed, after a red one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from devkit.authorities import make_pki
from tests.e2e.browser import CHROMIUM
from tests.e2e.helpers import PrivateStack, authorities_dir, sample_run, say

# Where the last private stack lives, so a run killed before its teardown is stopped by the next.
LAST_STATE = Path(tempfile.gettempdir()) / f"coc-e2e-{os.getuid()}.last"
WARM_UP_TIMEOUT = 180


def stop_leftover() -> None:
    """Stop a private stack an earlier session left running when it was killed before its teardown.

    Only when the session that started it is gone: a session still running keeps
    its stack, and this one then finds the ports taken and says so.
    """
    try:
        last = json.loads(LAST_STATE.read_text())
        state_dir, owner = Path(last["state_dir"]), int(last["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if session_alive(owner):
        return
    if any((state_dir / "pids").glob("*.json")):
        say(f"stopping the private stack a killed session (pid {owner}) left in {state_dir}")
        PrivateStack.at(state_dir).coc("stack", "down")
    LAST_STATE.unlink(missing_ok=True)


def session_alive(pid: int) -> bool:
    try:
        return b"pytest" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.fixture(scope="session")
def private_stack(request: pytest.FixtureRequest) -> Iterator[PrivateStack]:
    """``coc stack up`` on private ports and state; ``coc stack down`` at the end of the session."""
    stop_leftover()
    state_dir = Path(tempfile.mkdtemp(prefix="coc-e2e-"))
    stack = PrivateStack.at(state_dir)
    taken = stack.taken_ports()
    if taken:
        shutil.rmtree(state_dir, ignore_errors=True)
        pytest.fail(
            f"ports of the private e2e stack are taken ({', '.join(taken)}): another e2e session "
            f"running (see {LAST_STATE}), or another program"
        )
    LAST_STATE.write_text(json.dumps({"state_dir": str(state_dir), "pid": os.getpid()}))
    make_pki(authorities_dir(state_dir), clients=("client", "stranger"))  # the delivery's mutual TLS
    began = time.monotonic()
    try:
        result = stack.coc("stack", "up")
        if result.returncode != 0:
            pytest.fail(f"coc stack up (state {state_dir}) failed:\n{result.stdout}{result.stderr}")
        say(f"private stack up in {time.monotonic() - began:.0f}s, state {state_dir}")
        stack.load_tokens()
        yield stack
    finally:
        down = stack.coc("stack", "down")
        say(down.stdout)
        if down.returncode != 0:
            say(f"coc stack down (state {state_dir}) failed:\n{down.stdout}{down.stderr}")
        elif request.session.testsfailed == 0:
            shutil.rmtree(state_dir, ignore_errors=True)
            LAST_STATE.unlink(missing_ok=True)
        else:
            LAST_STATE.unlink(missing_ok=True)
            say(f"private stack's logs kept in {state_dir}/logs")


@pytest.fixture(scope="session")
async def pipeline(private_stack: PrivateStack) -> AsyncIterator[PrivateStack]:
    """The private stack with the approvals loaded, proven to archive a build of every approval.

    Validation reads approvals from their topic: a build published before its
    approval arrived would be blocked for a moment, and a test would take that
    moment for the end. One clean build per approval, waited for, rules it out
    and warms the pipeline up.
    """
    async with private_stack.client() as stack:
        warm = sample_run(120, seed=1, tag="W", defect_share=0.0)
        response = await stack.post_approvals(warm.approvals)
        assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
        first = {b.approval.key: b for b in reversed(warm.builds)}
        probes = [first[a.key] for a in warm.approvals if a.key in first]
        records = await stack.publish_and_settle(probes, WARM_UP_TIMEOUT)
        not_archived = {vin: r["state"] for vin, r in records.items() if r["state"] != "archived"}
        assert not not_archived, f"warm-up builds not archived: {not_archived}"
        yield stack


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for every browser test of the session (Debian's: Playwright's download is unreachable)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: `make test` installs it (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()
