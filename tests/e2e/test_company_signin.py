"""Company sign-in and sessions in a real browser: a real OpenID provider, a workspace that trusts it.

The provider is npm's oidc-provider (OpenID Certified) as ``devkit/oidc_provider.mjs``
serves it: its development sign-in page (any password), one registered client,
people whose ``groups`` claim the workspace maps to roles. The workspace is one
more instance on the private stack, started with the company sign-in settings
and a short idle timeout, so the stack's own workspace keeps its defaults.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from deploy.local.services import service_env
from tests.conftest import eventually
from tests.e2e.browser import ROOT, axe_violations, new_context, screenshot
from tests.e2e.helpers import COC, PrivateStack

pytestmark = pytest.mark.e2e

PROVIDER_PORT, WORKSPACE_PORT = 18490, 18491
ISSUER = f"http://127.0.0.1:{PROVIDER_PORT}"
BASE = f"http://127.0.0.1:{WORKSPACE_PORT}"
CLIENT_ID = "ecoc-workspace-e2e"
IDLE_S = 12.0
ACCOUNTS = {
    "anna": {"name": "Anna Berg", "email": "anna@plant.example", "groups": ["all-staff", "ecoc-reviewers"]},
    "olaf": {"name": "Olaf Outsider", "email": "olaf@plant.example", "groups": ["all-staff"]},
}


async def answers(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as http:
        try:
            return (await http.get(url)).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture(scope="module")
async def provider(private_stack: PrivateStack) -> AsyncIterator[str]:
    """The OpenID provider, up until the module's tests are done."""
    folder = private_stack.settings.state_dir / "oidc"
    folder.mkdir(exist_ok=True)
    config = {
        "port": PROVIDER_PORT,
        "client_id": CLIENT_ID,
        "client_secret": secrets.token_urlsafe(32),
        "redirect_uri": f"{BASE}/signin/oidc",
        "post_logout_redirect_uri": f"{BASE}/signin",
        "accounts": ACCOUNTS,
    }
    (folder / "provider.json").write_text(json.dumps(config))
    (folder / "client-secret").write_text(config["client_secret"])
    with (folder / "provider.log").open("ab") as log:
        process = subprocess.Popen(
            ["node", str(ROOT / "devkit" / "oidc_provider.mjs"), str(folder / "provider.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        discovery = f"{ISSUER}/.well-known/openid-configuration"
        await eventually(lambda: answers(discovery), within_s=30, every_s=0.2, what="the OpenID provider")
        yield ISSUER
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
async def company(private_stack: PrivateStack, provider: str) -> AsyncIterator[str]:
    """One more workspace on the private stack that offers company sign-in, with a short idle timeout."""
    folder = private_stack.settings.state_dir / "oidc"
    env = {
        **private_stack.env,
        **service_env(private_stack.settings),
        "COC_OIDC_ISSUER": provider,
        "COC_OIDC_NAME": "Plant ID",
        "COC_OIDC_CLIENT_ID": CLIENT_ID,
        "COC_OIDC_CLIENT_SECRET_FILE": str(folder / "client-secret"),
        "COC_OIDC_REDIRECT_URL": f"{BASE}/signin/oidc",
        "COC_OIDC_GROUP_ROLES": json.dumps(
            {"ecoc-reviewers": ["reviewer"], "ecoc-leads": ["compliance-lead"]}
        ),
        "COC_SESSION_IDLE_MINUTES": str(IDLE_S / 60),
    }
    with (folder / "workspace.log").open("ab") as log:
        process = subprocess.Popen(
            [COC, "service", "workspace", "--port", str(WORKSPACE_PORT)],
            env=env,
            cwd=private_stack.settings.state_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        await eventually(lambda: answers(f"{BASE}/signin"), within_s=60, every_s=0.25, what="the workspace")
        yield BASE
    finally:
        process.terminate()
        process.wait(timeout=20)


async def sign_in_at_the_company(context: BrowserContext, base: str, login: str, target: str = "/") -> Page:
    """Through the workspace's sign-in page and the provider's: the page the person lands on."""
    page = await context.new_page()
    await page.goto(f"{base}{target}")
    assert "/signin" in page.url, page.url
    await page.get_by_role("link", name="Sign in with Plant ID").click()
    await page.wait_for_url(re.compile(re.escape(ISSUER) + "/interaction/"))
    await page.locator('input[name="login"]').fill(login)
    await page.locator('input[name="password"]').fill("the provider's development page takes any")
    await page.locator('button[type="submit"]').click()
    await page.wait_for_url(re.compile(re.escape(base) + "/"))
    return page


async def session_cookie(context: BrowserContext) -> str:
    found = [c["value"] for c in await context.cookies(BASE) if c["name"] == "coc_session"]
    assert len(found) == 1, "one session cookie after signing in"
    return found[0]


async def test_a_person_signs_in_through_the_company_provider_and_gets_the_reviewer_role_from_their_group(
    company: str, browser: Browser, request: pytest.FixtureRequest
) -> None:
    context = await browser.new_context(bypass_csp=True)  # axe-core is injected as an inline script
    signin = await context.new_page()
    await signin.goto(f"{company}/signin")
    assert await axe_violations(signin) == []

    page = await sign_in_at_the_company(context, company, "anna", "/approvals")

    assert page.url == f"{company}/approvals"
    await expect(page.locator(".signout .me")).to_have_text("Anna Berg (reviewer)")
    await page.get_by_role("link", name="Anna Berg").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your sessions")
    await expect(page.locator("table.sessions tbody tr")).to_have_count(1)
    await expect(page.locator("table.sessions tbody tr")).to_contain_text("company sign-in")
    assert await axe_violations(page) == []
    await screenshot(page, request)
    await context.close()


async def test_a_person_whose_groups_hold_no_role_is_not_signed_in(
    company: str, browser: Browser, request: pytest.FixtureRequest
) -> None:
    context = await new_context(browser)

    page = await sign_in_at_the_company(context, company, "olaf")

    assert "/signin" in page.url
    await expect(page.get_by_role("alert")).to_contain_text("no group that holds a role")
    assert not [c for c in await context.cookies(BASE) if c["name"] == "coc_session"]
    await screenshot(page, request)
    await context.close()


async def test_after_sign_out_the_old_cookie_is_refused(
    company: str, browser: Browser, request: pytest.FixtureRequest
) -> None:
    context = await new_context(browser)
    page = await sign_in_at_the_company(context, company, "anna")
    copied = await session_cookie(context)

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(re.escape(ISSUER) + "/session/end"))  # the company's sign-out too
    await page.get_by_role("button", name=re.compile("Yes")).click()
    await page.wait_for_url(f"{company}/signin")

    replay = await new_context(browser)
    await replay.add_cookies([{"name": "coc_session", "value": copied, "url": company}])
    again = await replay.new_page()
    await again.goto(f"{company}/approvals")
    assert again.url.startswith(f"{company}/signin?next="), again.url
    async with httpx.AsyncClient(cookies={"coc_session": copied}) as http:
        answer = await http.get(f"{company}/approvals")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")
    await screenshot(again, request)
    await context.close()
    await replay.close()


async def test_a_session_left_idle_for_the_idle_timeout_is_over(
    company: str, browser: Browser, request: pytest.FixtureRequest
) -> None:
    context = await new_context(browser)
    page = await sign_in_at_the_company(context, company, "anna", "/approvals")
    await page.reload()
    assert page.url == f"{company}/approvals"  # in use: still signed in

    # Nothing to wait for but time itself: any request would keep the session alive.
    await asyncio.sleep(IDLE_S + 1)
    await page.reload()

    assert page.url.startswith(f"{company}/signin?next=")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await screenshot(page, request)
    await context.close()
