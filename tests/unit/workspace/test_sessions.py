"""Sessions kept on the server: sign-out ends them, they expire idle or at their lifetime, and a person ends their own."""

from __future__ import annotations

import re

import pytest

from services.workspace.identity import Person, PersonRole, SessionSource
from services.workspace.routes import deps
from services.workspace.settings import WorkspaceSettings
from tests.unit.workspace.fakes import PASSWORD, PEOPLE, SECRET, Site

pytestmark = pytest.mark.unit

REVIEWER = PEOPLE[PersonRole.REVIEWER]
VIEWER = PEOPLE[PersonRole.VIEWER]


def cookie(site: Site) -> str:
    return str(site.client.cookies.get(deps.SESSION_COOKIE))


def test_the_cookie_holds_a_random_token_and_the_database_only_its_hash() -> None:
    site = Site()
    site.sign_in_as(REVIEWER)

    token = cookie(site)
    (stored,) = site.stored.documents.values()
    assert token not in str(stored) and REVIEWER.name not in token
    assert stored["name"] == REVIEWER.name and stored["roles"] == ["reviewer"]


def test_after_sign_out_a_replayed_cookie_opens_nothing() -> None:
    site = Site()
    csrf = site.sign_in_as(REVIEWER)
    copied = cookie(site)

    assert site.client.post("/signout", data={"csrf": csrf}).headers["location"] == "/signin"
    assert site.stored.documents == {}
    site.client.cookies.set(deps.SESSION_COOKIE, copied, domain="testserver.local")
    answer = site.client.get("/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")


def test_a_session_unused_for_the_idle_timeout_ends_and_is_deleted() -> None:
    site = Site(settings=WorkspaceSettings(workspace_secret=SECRET, page_size=10, session_idle_minutes=5))
    site.sign_in_as(VIEWER)

    site.clock.advance(4 * 60 + 59)
    assert site.client.get("/").status_code == 200  # used: the idle time starts again
    site.clock.advance(4 * 60 + 59)
    assert site.client.get("/").status_code == 200
    site.clock.advance(5 * 60)
    assert site.client.get("/").status_code == 303
    assert site.stored.documents == {}


def test_a_busy_session_still_ends_at_its_lifetime() -> None:
    site = Site(settings=WorkspaceSettings(workspace_secret=SECRET, page_size=10, session_hours=1))
    site.sign_in_as(VIEWER)

    for _ in range(5):
        site.clock.advance(11 * 60)
        assert site.client.get("/").status_code == 200
    site.clock.advance(6 * 60)  # 61 minutes after signing in
    assert site.client.get("/").status_code == 303


def test_last_seen_is_written_at_most_once_a_minute_not_on_every_request() -> None:
    site = Site()
    site.sign_in_as(VIEWER)
    writes = site.stored.writes

    for _ in range(10):
        site.clock.advance(5)
        assert site.client.get("/").status_code == 200
    assert site.stored.writes - writes == 0
    site.clock.advance(15)  # a minute after signing in
    site.client.get("/")
    assert site.stored.writes - writes == 1


def test_a_person_whose_roles_changed_since_signing_in_has_no_session_any_more() -> None:
    site = Site()
    site.sign_in_as(REVIEWER)
    site.users.people[REVIEWER.name] = Person(REVIEWER.name, frozenset({PersonRole.VIEWER}))

    assert site.client.get("/").status_code == 303
    assert site.stored.documents == {}


def test_a_person_removed_since_signing_in_has_no_session_any_more() -> None:
    site = Site()
    site.sign_in_as(REVIEWER)
    del site.users.people[REVIEWER.name]

    assert site.client.get("/").status_code == 303
    assert site.stored.documents == {}


def test_a_company_sign_in_keeps_the_roles_its_groups_gave_without_a_local_account() -> None:
    site = Site()
    site.sign_in_as(Person("Anna Berg", frozenset({PersonRole.REVIEWER})), SessionSource.OIDC)

    page = site.client.get("/")
    assert page.status_code == 200 and "Anna Berg" in page.text and "(reviewer)" in page.text


def keys_on(page: str) -> list[str]:
    return re.findall(r'name="session" value="([0-9a-f]{64})"', page)


def test_a_person_sees_only_their_own_sessions_and_ends_another_one_of_theirs() -> None:
    site = Site()
    other = Site(users=site.users, clock=site.clock)
    other.stored, other.sessions = site.stored, site.sessions  # the same database, another browser
    other.app.dependency_overrides[deps.sessions] = lambda: site.sessions
    other.sign_in_as(REVIEWER)
    laptop = cookie(other)
    site.sign_in_as(VIEWER)  # someone else's session: never listed
    csrf = site.sign_in_as(REVIEWER)

    page = site.client.get("/sessions")
    assert page.status_code == 200 and "End (this one)" in page.text
    keys = keys_on(page.text)
    assert len(keys) == 2
    current = re.search(r'class="current">.*?name="session" value="([0-9a-f]{64})"', page.text, re.S)
    assert current is not None
    (laptop_key,) = [k for k in keys if k != current.group(1)]

    ended = site.client.post("/sessions/end", data={"csrf": csrf, "session": laptop_key})
    assert ended.status_code == 303 and ended.headers["location"] == "/sessions"
    other.client.cookies.set(deps.SESSION_COOKIE, laptop, domain="testserver.local")
    assert other.client.get("/").status_code == 303
    assert len(keys_on(site.client.get("/sessions").text)) == 1


def test_ending_a_session_needs_the_csrf_token_and_one_of_ones_own_sessions() -> None:
    site = Site()
    stranger = site.sign_in_as(VIEWER)
    (viewer_key,) = keys_on(site.client.get("/sessions").text)
    csrf = site.sign_in_as(REVIEWER)

    assert (
        site.client.post("/sessions/end", data={"csrf": stranger, "session": viewer_key}).status_code == 403
    )
    assert site.client.post("/sessions/end", data={"csrf": csrf, "session": viewer_key}).status_code == 404
    assert site.client.post("/sessions/end", data={"csrf": csrf, "session": "x"}).status_code == 404
    assert len(site.stored.documents) == 2


def test_ending_the_current_session_signs_out() -> None:
    site = Site()
    csrf = site.sign_in_as(REVIEWER)
    (key,) = keys_on(site.client.get("/sessions").text)

    ended = site.client.post("/sessions/end", data={"csrf": csrf, "session": key})
    assert ended.headers["location"] == "/signin"
    assert site.client.get("/").status_code == 303


def test_a_password_sign_in_records_the_address_and_browser_of_the_session() -> None:
    site = Site()
    page = site.client.get("/signin").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    form = {"name": REVIEWER.name, "password": PASSWORD, "csrf": csrf.group(1)}
    assert site.client.post("/signin", data=form, headers={"user-agent": "Plant PC"}).status_code == 303

    listed = site.client.get("/sessions").text
    assert "Plant PC" in listed and "password" in listed and "testclient" in listed


def test_signing_in_again_in_the_same_browser_ends_the_session_it_had() -> None:
    site = Site()
    site.sign_in_as(VIEWER)
    page = site.client.get("/signin").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None

    form = {"name": REVIEWER.name, "password": PASSWORD, "csrf": csrf.group(1)}
    assert site.client.post("/signin", data=form).status_code == 303

    (stored,) = site.stored.documents.values()
    assert stored["name"] == REVIEWER.name
