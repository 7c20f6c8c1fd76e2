"""The workspace's guard in a real browser (Debian's Chromium via Playwright) on the private stack.

Reviews only where a review waits (no Accept on an error-blocked record, a
forged acceptance refused with 409 and nothing audited), the protective headers
on every page as uvicorn serves them, and a page on another local port that
tries to frame the board, refused by the browser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect

from tests.conftest import eventually
from tests.e2e.browser import Person, add_person, new_context, screenshot, sign_in
from tests.e2e.helpers import PrivateStack, describe, sample_run

pytestmark = pytest.mark.e2e
TIMEOUT = 180.0
PROTECTIVE = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@pytest.fixture(scope="module")
def guards(pipeline: PrivateStack) -> dict[str, Person]:
    """A reviewer and an auditor (viewer) of this module's own, made with `coc users add`."""
    return {
        "reviewer": add_person(pipeline, "Gus Reviewer", "reviewer"),
        "auditor": add_person(pipeline, "Ada Auditor", "viewer"),
    }


@pytest.fixture(scope="module")
def base(pipeline: PrivateStack) -> str:
    return pipeline.url("workspace")


def csp_refusals(page: Page) -> list[str]:
    """Console lines in which the browser says it refused something for the Content-Security-Policy."""
    refused: list[str] = []

    def heard(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            refused.append(message.text)

    page.on("console", heard)
    return refused


async def blocked_by_an_error(pipeline: PrivateStack) -> tuple[str, list[str]]:
    """A record of its own that validation blocked with an error finding: its VIN and finding codes."""
    run = sample_run(6, seed=611, tag="G", defect_share=1.0)
    async with pipeline.watch(run.expected) as watch:
        await pipeline.publish(list(run.builds))
        records = await pipeline.settle(watch, run.expected, TIMEOUT)
    for vin, record in records.items():
        if record["state"] == "blocked" and any(f["severity"] == "error" for f in record["findings"]):
            return vin, [f["code"] for f in record["findings"]]
    raise AssertionError(f"no record blocked by an error: {[describe(r) for r in records.values()]}")


async def test_a_reviewer_sees_no_accept_on_an_error_blocked_record_and_a_forged_accept_is_409_unaudited(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    guards: dict[str, Person],
    request: pytest.FixtureRequest,
) -> None:
    vin, codes = await blocked_by_an_error(pipeline)
    context = await new_context(browser)
    page = await sign_in(context, base, guards["reviewer"], f"/records/{vin}")
    await expect(page.locator("[data-record-state]")).to_have_text("blocked")
    await expect(page.locator("main")).to_contain_text(codes[0])
    await expect(page.get_by_role("button", name="Accept revision 1")).to_have_count(0)
    await expect(page.get_by_role("button", name="Reject revision 1")).to_have_count(0)
    await expect(page.locator("[data-no-review]")).to_contain_text("no review can release it")

    csrf = await page.locator("form.signout input[name=csrf]").input_value()
    forged = await page.request.post(
        f"{base}/records/{vin}/review",
        form={"csrf": csrf, "revision": "1", "decision": "accept", "comment": "forged"},
        max_redirects=0,
    )
    assert forged.status == 409, await forged.text()
    assert "not waiting for a review" in await forged.text()

    await page.reload()
    await expect(page.locator("table.timeline")).not_to_contain_text("review:accept")
    await expect(page.locator("main")).not_to_contain_text("released by")
    auditor = await sign_in(await new_context(browser), base, guards["auditor"], "/")
    log = await auditor.request.get(f"{base}/audit/log.csv")
    assert log.status == 200 and f"record:{vin}" not in await log.text(), "the refused review was audited"
    record = await pipeline.record(vin)
    assert record is not None and record["state"] == "blocked", describe(record)
    await screenshot(page, request)
    await context.close()


async def test_every_page_carries_the_protective_headers_and_runs_its_script_under_them(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    guards: dict[str, Person],
    request: pytest.FixtureRequest,
) -> None:
    context = await new_context(browser)
    page = await context.new_page()
    refused = csp_refusals(page)
    signin = await page.goto(f"{base}/signin")
    assert signin is not None
    answers = {"/signin": await signin.all_headers()}
    await page.get_by_label("Name").fill(guards["auditor"].name)
    await page.get_by_label("Password").fill(guards["auditor"].password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/")
    (build,) = sample_run(1, seed=612, tag="H", defect_share=0.0).builds
    pages = ["/", "/worklists/production", "/states/blocked", "/approvals", "/rollout", "/audit", "/sessions"]
    pages += [f"/records/{build.vin}", "/static/workspace.js", "/static/workspace.css", "/no/such/page"]
    for path in pages:
        answer = await page.goto(f"{base}{path}")
        assert answer is not None, path
        answers[path] = await answer.all_headers()
    for path, got in answers.items():
        assert {name: got.get(name) for name in PROTECTIVE} == PROTECTIVE, path
        policy = got.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy, path
        assert "server" not in got, f"{path}: server: {got.get('server')}"
        assert "strict-transport-security" not in got, path  # plain HTTP on loopback
    cookies = await context.cookies(base)
    assert cookies and all(c["httpOnly"] for c in cookies)
    assert not any(c["secure"] for c in cookies), "on loopback over plain HTTP the demo keeps its session"

    # The board's own script runs under the policy: its live updates connect.
    await page.goto(f"{base}/")
    await expect(page.locator("[data-live-board] [data-live-state]")).to_have_text("Live updates on.")
    assert refused == [], refused
    await screenshot(page, request)
    await context.close()


class Framer(BaseHTTPRequestHandler):
    """Another site on a local port: a page that frames the board, and a harmless page of its own."""

    board = ""

    def do_GET(self) -> None:
        if self.path == "/own":
            body = b"<!doctype html><title>own</title><p id=own>a page that may be framed</p>"
        else:
            body = (
                "<!doctype html><title>framer</title>"
                f'<iframe id="board" src="{self.board}/" width="800" height="600"></iframe>'
                '<iframe id="own" src="/own" width="300" height="100"></iframe>'
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def framer(base: str) -> Iterator[str]:
    handler = type("BoardFramer", (Framer,), {"board": base})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_page_on_another_local_port_that_frames_the_board_is_refused_by_the_browser(
    browser: Browser, base: str, framer: str, guards: dict[str, Person], request: pytest.FixtureRequest
) -> None:
    context = await new_context(browser)
    await sign_in(context, base, guards["auditor"], "/")  # signed in: framed, the board would show
    page = await context.new_page()
    refused = csp_refusals(page)
    await page.goto(f"{framer}/")
    own = page.frame_locator("#own")
    await expect(own.locator("#own")).to_have_text("a page that may be framed")  # frames work there

    async def refusal_heard() -> bool:
        return any("frame-ancestors" in line for line in refused)

    await eventually(refusal_heard, within_s=10, every_s=0.2, what="the browser refusing the frame")
    board = page.frame_locator("#board")
    await expect(board.locator("[data-live-board]")).to_have_count(0)
    await expect(board.locator("body")).not_to_contain_text("Readiness")
    element = await page.query_selector("#board")
    framed = await element.content_frame() if element else None
    assert framed is not None and "eCoC workspace" not in await framed.title(), (
        "the board loaded in the frame"
    )
    await screenshot(page, request)
    await context.close()
