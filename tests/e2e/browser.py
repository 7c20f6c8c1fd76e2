"""A real browser on the workspace: Playwright driving Debian's Chromium, and axe-core injected into pages.

Chromium comes from Debian (`apt-get install chromium`, done by `make test`);
Playwright's own browser download cannot reach its host here. axe-core comes
from npm into ``node_modules/`` (`make test` runs `npm ci`). Every test saves a
screenshot of the page it ends on under ``out/screenshots/``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from tests.e2e.helpers import PrivateStack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("COC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "out" / "screenshots"
SERIOUS = ("serious", "critical")


@dataclass(frozen=True)
class Person:
    name: str
    roles: tuple[str, ...]
    password: str


PEOPLE = {
    "production": ("Pat Production", ("production",)),
    "reviewer": ("Rita Reviewer", ("reviewer",)),
    "lead": ("Carla Lead", ("compliance-lead",)),
    "viewer": ("Vic Viewer", ("viewer",)),
}


def add_people(stack: PrivateStack) -> dict[str, Person]:
    """One person per part the tests play, made with `coc users add` as an administrator would."""
    return {key: add_person(stack, name, *roles) for key, (name, roles) in PEOPLE.items()}


def add_person(stack: PrivateStack, name: str, *roles: str) -> Person:
    """A person with ``roles`` and a generated password, made with `coc users add`."""
    password = secrets.token_urlsafe(18)
    role_args = [arg for role in roles for arg in ("--role", role)]
    result = stack.coc("users", "add", name, *role_args, "--password-stdin", stdin=password + "\n")
    assert result.returncode == 0, f"coc users add {name}: {result.stdout}{result.stderr}"
    return Person(name, roles, password)


async def sign_in(context: BrowserContext, base: str, person: Person, target: str = "/") -> Page:
    """A page of ``context`` signed in as ``person``, on ``target``."""
    page = await context.new_page()
    await page.goto(f"{base}{target}")
    assert "/signin" in page.url, f"expected the sign-in page, got {page.url}"
    await page.get_by_label("Name").fill(person.name)
    await page.get_by_label("Password").fill(person.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(re.escape(base + target.split("?")[0]) + r"(\?.*)?$"))
    return page


async def axe_violations(page: Page) -> list[str]:
    """Serious and critical accessibility violations axe-core finds on the page, one line each.

    axe-core is evaluated through the browser's debugging protocol: the
    workspace's Content-Security-Policy refuses an inline script tag, as it should.
    """
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = await page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['impact']}: {v['id']}: {v['help']} ({len(v['nodes'])} nodes, e.g. {v['nodes'][0]['target']})"
        for v in result["violations"]
        if v.get("impact") in SERIOUS
    ]


async def screenshot(page: Page, request: pytest.FixtureRequest) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{request.node.name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def new_context(browser: Browser) -> BrowserContext:
    return await browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
