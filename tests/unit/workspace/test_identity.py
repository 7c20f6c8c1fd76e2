"""People, sessions and CSRF tokens of the workspace (pure); the throttle is in test_passwords_and_throttle."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from services.workspace.identity import (
    InvalidField,
    Person,
    PersonRole,
    Session,
    SessionRules,
    SessionSource,
    check_name,
    check_password,
    check_roles,
    csrf_ok,
    csrf_token,
    new_session_token,
    seal,
    session_key,
    unseal,
)

pytestmark = pytest.mark.unit

SECRET = b"s" * 32
OTHER = b"o" * 32
T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


# -- people ------------------------------------------------------------------------------------


def test_a_viewer_only_person_can_see_but_change_nothing() -> None:
    viewer = Person("Vera Viewer", frozenset({PersonRole.VIEWER}))

    assert viewer.can(PersonRole.VIEWER)
    assert viewer.read_only
    assert not any(viewer.can(role) for role in PersonRole if role is not PersonRole.VIEWER)


def test_a_person_with_several_roles_can_act_in_each_and_only_those() -> None:
    person = Person("Rita", frozenset({PersonRole.REVIEWER, PersonRole.PRODUCTION}))

    assert person.can(PersonRole.REVIEWER) and person.can(PersonRole.PRODUCTION)
    assert person.can(PersonRole.VIEWER)  # everyone signed in may look
    assert not person.can(PersonRole.COMPLIANCE_LEAD)
    assert not person.read_only


def test_roles_are_read_from_their_names_and_an_unknown_one_is_named() -> None:
    assert check_roles(["compliance-lead", "viewer"]) == {PersonRole.COMPLIANCE_LEAD, PersonRole.VIEWER}
    assert check_roles("reviewer") == {PersonRole.REVIEWER}
    with pytest.raises(InvalidField, match=r"^role: unknown role 'admin'") as caught:
        check_roles(["viewer", "admin"])
    assert caught.value.field == "role"
    with pytest.raises(InvalidField, match=r"^role: "):
        check_roles([])


@pytest.mark.parametrize("name", ["Anna", "Jürgen Müller", "O'Brien", "J. Smith-Jones", "ops 2", "a" * 64])
def test_names_of_people_are_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a" * 65, " Anna", "Anna ", "Anna  Lee", "anna|admin", "anna_b", "<script>", "-x", "a\nb"]
)
def test_names_that_break_the_rule_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidField, match=r"^name: "):
        check_name(name)


def test_a_password_shorter_than_twelve_characters_is_refused() -> None:
    with pytest.raises(InvalidField, match=r"^password: must be at least 12"):
        check_password("elevenchars")
    assert check_password("twelve chars") == "twelve chars"


# -- sessions ----------------------------------------------------------------------------------

RULES = SessionRules(idle=dt.timedelta(minutes=30), lifetime=dt.timedelta(hours=10))


def a_session(created: dt.datetime = T0, last_seen: dt.datetime = T0) -> Session:
    roles = frozenset({PersonRole.REVIEWER})
    return Session("k" * 64, "Anna", roles, SessionSource.LOCAL, created, last_seen)


def test_each_session_token_is_fresh_and_only_its_hash_is_the_key() -> None:
    first, second = new_session_token(), new_session_token()

    assert first != second and len(first) == 43
    key = session_key(first)
    assert key is not None and len(key) == 64 and first not in key
    assert session_key(first) == key != session_key(second)


@pytest.mark.parametrize(
    "garbage", [None, 17, b"bytes", "", "x" * 42, "x" * 44, "x" * 10_000, "é" * 43, "a.b", "=" * 43]
)
def test_anything_not_shaped_like_a_token_has_no_key_and_never_raises(garbage: object) -> None:
    assert session_key(garbage) is None


def test_a_session_ends_after_the_idle_timeout_without_use() -> None:
    used = a_session(last_seen=T0 + dt.timedelta(hours=2))

    assert not used.over(RULES, T0 + dt.timedelta(hours=2, minutes=29))
    assert used.over(RULES, T0 + dt.timedelta(hours=2, minutes=30))


def test_a_session_ends_at_its_lifetime_however_busy() -> None:
    busy = a_session(last_seen=T0 + dt.timedelta(hours=9, minutes=59))

    assert not busy.over(RULES, T0 + dt.timedelta(hours=9, minutes=59, seconds=59))
    assert busy.over(RULES, T0 + dt.timedelta(hours=10))


def test_last_seen_is_written_at_most_once_a_minute_or_a_quarter_of_a_short_idle_timeout() -> None:
    assert not a_session().needs_touch(RULES, T0 + dt.timedelta(seconds=59))
    assert a_session().needs_touch(RULES, T0 + dt.timedelta(seconds=60))
    short = SessionRules(idle=dt.timedelta(seconds=8), lifetime=dt.timedelta(hours=1))
    assert short.touch_every == dt.timedelta(seconds=2)


def test_rules_without_a_positive_idle_timeout_or_lifetime_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        SessionRules(idle=dt.timedelta(0), lifetime=HOUR)


# -- sealed values -----------------------------------------------------------------------------


def test_a_sealed_value_reads_back_its_fields_until_it_expires() -> None:
    sealed = seal("oidc", ["state", "nonce", "/records"], SECRET, T0, HOUR)

    assert unseal("oidc", sealed, SECRET, T0 + dt.timedelta(minutes=59)) == ["state", "nonce", "/records"]
    assert unseal("oidc", sealed, SECRET, T0 + HOUR) is None


def test_a_sealed_value_is_nothing_under_another_purpose_or_secret_or_with_any_byte_changed() -> None:
    sealed = seal("oidc", ["state"], SECRET, T0, HOUR)

    assert unseal("other", sealed, SECRET, T0) is None
    assert unseal("oidc", seal("oidc", ["state"], OTHER, T0, HOUR), SECRET, T0) is None
    for index in range(len(sealed)):
        changed = sealed[:index] + ("A" if sealed[index] != "A" else "B") + sealed[index + 1 :]
        assert unseal("oidc", changed, SECRET, T0) is None, index


def test_a_sealed_value_with_a_forged_field_is_nothing() -> None:
    payload, mac = seal("oidc", ["Anna"], SECRET, T0, HOUR).split(".")
    text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    forged = base64.urlsafe_b64encode(text.replace("Anna", "Boss").encode()).rstrip(b"=").decode()

    assert unseal("oidc", f"{forged}.{mac}", SECRET, T0) is None


@pytest.mark.parametrize(
    "garbage",
    [None, 17, b"bytes", "", ".", "..", "a.b", "not base64!.x", "é.é", "x" * 10_000, "a.b.c", "=.="],
)
def test_garbage_is_no_sealed_value_and_never_raises(garbage: object) -> None:
    assert unseal("oidc", garbage, SECRET, T0) is None


def test_a_weak_secret_is_refused_when_sealing() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        seal("oidc", ["x"], b"short", T0, HOUR)


# -- CSRF --------------------------------------------------------------------------------------


def test_a_session_accepts_its_own_csrf_token() -> None:
    assert csrf_ok(csrf_token("session-a", SECRET), "session-a", SECRET)


def test_another_sessions_csrf_token_is_refused() -> None:
    assert not csrf_ok(csrf_token("session-b", SECRET), "session-a", SECRET)


@pytest.mark.parametrize("token", [None, "", "x", "é", 42])
def test_a_missing_or_garbage_csrf_token_is_refused(token: object) -> None:
    assert not csrf_ok(token, "session-a", SECRET)


def test_a_csrf_token_made_with_another_secret_or_for_no_session_is_refused() -> None:
    assert not csrf_ok(csrf_token("session-a", OTHER), "session-a", SECRET)
    assert not csrf_ok(csrf_token("", SECRET), "", SECRET)
