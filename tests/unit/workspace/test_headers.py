"""Protective headers on every answer of the workspace, and the Secure flag on its cookies (TestClient)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient

from services.workspace import headers
from services.workspace.app import STATIC
from services.workspace.app import create_app as workspace_app
from services.workspace.headers import ProtectiveHeaders, is_loopback, with_secure
from services.workspace.identity import PersonRole
from services.workspace.settings import WorkspaceSettings
from tests.unit.workspace.fakes import PEOPLE, SECRET, Site

pytestmark = pytest.mark.unit

VIN = "HEADERS0VIN000001"
FILLED = {
    "vin": VIN,
    "job_id": "reissue-20261207093015-abc123",
    "state": "blocked",
    "team": "production",
    "key": "e1*2018/858*00001*00|M1|A|1",
    "kind": "csv",
    "sha256": "0" * 64,
    "token": "an-upload-token-of-22c",  # an approval upload's (none: the page is a 404, with the headers)
}
NOT_A_PAGE = {"/live"}  # a stream that never ends; its headers are checked in the browser test


def pages_of(app: FastAPI) -> list[str]:
    """Every GET path the workspace serves, its parameters filled in."""
    paths = []
    for path, operations in app.openapi()["paths"].items():
        if "get" in operations and path not in NOT_A_PAGE:
            paths.append(re.sub(r"\{(\w+)(:\w+)?\}", lambda m: FILLED[m.group(1)], path))
    return paths


def assert_protected(answer: Any) -> None:
    got = answer.headers
    policy = got["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert got["x-frame-options"] == "DENY"
    assert got["x-content-type-options"] == "nosniff"
    assert got["referrer-policy"] == "same-origin"
    assert "server" not in got
    assert "strict-transport-security" not in got  # plain HTTP: HSTS means nothing there


def protected_site(**settings: Any) -> Site:
    """The workspace's rooms with the headers in front, as ``create_app`` and ``Site`` put them."""
    return Site(settings=WorkspaceSettings(workspace_secret=SECRET, page_size=10, **settings))


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed in", "signed out"])
def test_every_page_carries_the_protective_headers(signed_in: bool) -> None:
    site = protected_site()
    if signed_in:
        site.sign_in_as(PEOPLE[PersonRole.REVIEWER])
    pages = pages_of(site.app)
    assert {"/", "/signin", f"/records/{VIN}", "/rollout", "/approvals", "/audit"} <= set(pages)
    for page in pages:
        answer = site.client.get(page)
        assert answer.status_code < 500 or page == "/healthz", page
        assert_protected(answer)


def test_static_files_errors_and_refused_forms_carry_them_too() -> None:
    site = protected_site()
    csrf = site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    for answer in (
        site.client.get("/static/workspace.js"),
        site.client.get("/static/workspace.css"),
        site.client.get("/static/missing.js"),
        site.client.get("/no/such/page"),
        site.client.post(
            f"/records/{VIN}/review", data={"csrf": csrf, "revision": "1", "decision": "accept"}
        ),
        site.client.post("/rollout", data={"csrf": "forged", "group": "KUDU", "policy": "hold"}),
    ):
        assert_protected(answer)


def test_the_workspace_app_is_built_with_the_headers_in_front() -> None:
    assert any(layer.cls is ProtectiveHeaders for layer in workspace_app().user_middleware)


def test_no_template_holds_an_inline_script_or_event_handler() -> None:
    templates = STATIC.parent / "templates"
    for page in templates.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"{page.name}: inline <script>"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{page.name}: inline event handler"
        assert "javascript:" not in text and "style=" not in text, page.name


# -- cookies -----------------------------------------------------------------------------------


def signin_cookie(site: Site, base_url: str = "http://testserver") -> str:
    site.client.base_url = site.client.base_url.copy_with(scheme=base_url.split(":")[0])
    return site.client.get("/signin").headers["set-cookie"]


def test_on_loopback_over_plain_http_cookies_are_not_secure_so_the_local_demo_works() -> None:
    cookie = signin_cookie(protected_site(http_host="127.0.0.1"))
    assert "httponly" in cookie.lower() and "secure" not in cookie.lower()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "workspace.plant.example"])
def test_off_loopback_cookies_are_secure_by_default(host: str) -> None:
    assert "; Secure" in signin_cookie(protected_site(http_host=host))


def test_off_loopback_the_secure_flag_can_be_turned_off_for_a_plain_http_trial() -> None:
    assert "secure" not in signin_cookie(protected_site(http_host="0.0.0.0", secure_cookies=False)).lower()


def test_over_tls_cookies_are_secure_and_hsts_is_sent_even_on_loopback() -> None:
    site = protected_site(http_host="127.0.0.1", secure_cookies=False)
    answer = TestClient(site.app, base_url="https://testserver").get("/signin")
    assert "; Secure" in answer.headers["set-cookie"]
    assert answer.headers["strict-transport-security"] == "max-age=31536000"


@pytest.mark.parametrize(
    ("cookie", "secure", "expected"),
    [
        (b"s=1; HttpOnly; Path=/", True, b"s=1; HttpOnly; Path=/; Secure"),
        (b"s=1; secure; HttpOnly", True, b"s=1; HttpOnly; Secure"),
        (b"s=1; Secure; HttpOnly", False, b"s=1; HttpOnly"),
        (b"s=1", False, b"s=1"),
    ],
)
def test_the_secure_attribute_is_set_once_or_taken_away(cookie: bytes, secure: bool, expected: bytes) -> None:
    assert with_secure(cookie, secure) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        *[("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True)],
        *[("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("coc.example", False)],
    ],
)
def test_loopback_is_what_only_this_machine_reaches(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# -- the middleware on its own -----------------------------------------------------------------


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def answer() -> PlainTextResponse:
        return PlainTextResponse(
            "x", headers={"Server": "uvicorn", "X-Frame-Options": "ALLOWALL", "X-Coc-Sha256": "abc"}
        )

    return app


def test_an_applications_own_frame_or_server_header_is_replaced_and_others_kept() -> None:
    app = bare_app()
    app.add_middleware(ProtectiveHeaders, secure_cookies=False)
    got = TestClient(app).get("/").headers
    assert got["x-frame-options"] == "DENY" and "server" not in got
    assert got["x-coc-sha256"] == "abc"
    assert got.get_list("x-frame-options") == ["DENY"]


def test_forms_may_lead_to_the_company_sign_in_provider_and_nowhere_else() -> None:
    policy = headers.content_security_policy(
        [headers.origin_of("https://login.example.com/tenant/v2.0") or ""]
    )
    assert "form-action 'self' https://login.example.com;" in policy
    assert headers.origin_of("javascript:alert(1)") is None and headers.origin_of(None) is None


def test_every_service_is_served_without_a_server_banner(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from services.launch import serve
    from shared.settings import ServiceSettings

    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(options))
    serve(bare_app(), ServiceSettings(), 8999)
    assert ran["server_header"] is False and ran["port"] == 8999


def test_with_company_sign_in_set_forms_may_lead_to_its_provider() -> None:
    site = protected_site(oidc_issuer="https://login.example.com/tenant/v2.0")
    policy = site.client.get("/signin").headers["content-security-policy"]
    assert "form-action 'self' https://login.example.com;" in policy
