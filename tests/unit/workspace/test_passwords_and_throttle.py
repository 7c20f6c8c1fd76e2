"""The password rules (NIST SP 800-63B) and the sign-in throttle's keys, on a fake clock (pure)."""

from __future__ import annotations

import re

import pytest

from services.workspace.identity import InvalidField, PersonRole, Throttle, check_password
from services.workspace.passwords import common_passwords, weakness
from tests.unit.workspace.fakes import PASSWORD, PEOPLE, Site

pytestmark = pytest.mark.unit

PROXY = "10.0.0.1"  # the plant's proxy: everyone there signs in from it
MINUTE = 60.0


# -- passwords ---------------------------------------------------------------------------------


def test_a_password_shorter_than_twelve_characters_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidField, match=r"^password: must be at least 12 characters$"):
        check_password("Kudu plant7")
    assert check_password("Kudu plant 7") == "Kudu plant 7"


def test_a_password_over_1024_characters_is_refused_before_any_other_check() -> None:
    with pytest.raises(InvalidField, match="at most 1024"):
        check_password("x" * 1025)


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "............", "ZZZZZZZZZZZZZZZZ", "777777777777"])
def test_one_character_repeated_is_refused(password: str) -> None:
    with pytest.raises(InvalidField, match=r"^password: is one character repeated"):
        check_password(password)


@pytest.mark.parametrize(
    "password",
    [
        "abcdefghijkl",
        "ABCDEFGHIJKLMNOP",
        "zyxwvutsrqpo",
        "123456789012",  # the digits, around their end
        "987654321098",
        "qwertyuiopas",  # a keyboard, row after row
        "lkjhgfdsapoi",
        "azertyuiopqs",
        "qwertzuiopas",
        "xyzabcdefghi",  # the alphabet, around its end
    ],
)
def test_a_simple_sequence_of_letters_digits_or_keys_is_refused(password: str) -> None:
    with pytest.raises(InvalidField, match=r"^password: is a simple sequence"):
        check_password(password)


@pytest.mark.parametrize("password", ["abcabcabcabc", "1212121212121", "ab12ab12ab12ab"])
def test_a_short_block_repeated_is_refused(password: str) -> None:
    with pytest.raises(InvalidField, match=r"^password: is a block of at most 4 characters repeated"):
        check_password(password)


@pytest.mark.parametrize(
    "password",
    [
        "1qaz2wsx3edc",  # on the list as it is
        "LeaveMeAlone",  # in any case
        "Password123!",  # a listed one with a few digits or symbols added
        "!!sunshine2024",
        "iloveyou12345678",  # or a sequence added
        "monkeymonkey",  # or repeated
        "footballfootballfootball",
    ],
)
def test_a_common_password_or_one_with_a_little_added_is_refused(password: str) -> None:
    with pytest.raises(InvalidField, match=r"^password: is on a list of common passwords"):
        check_password(password)


@pytest.mark.parametrize(
    "password",
    [
        "Kudu plant 7 approvals",
        "correct horse battery",
        "Zebra-Crossing-19",
        "tr0ub4dor&3x-Pm",
        "password manager said 8fQ2",  # a common word inside a longer phrase is fine
        "the password of every test person",
    ],
)
def test_long_unpredictable_passwords_and_passphrases_are_accepted_without_composition_rules(
    password: str,
) -> None:
    assert weakness(password) is None
    assert check_password(password) == password


def test_full_width_letters_fall_to_the_same_rules() -> None:
    assert weakness("ｑｗｅｒｔｙｕｉｏｐａｓ") is not None  # NFKC: qwertyuiopas


def test_the_list_of_common_passwords_is_the_whole_lower_case_list() -> None:
    common = common_passwords()
    assert len(common) > 25_000
    assert {"password", "qwerty", "1qaz2wsx3edc"} <= common
    assert all(word == word.casefold() for word in common)


# -- the throttle: per account -----------------------------------------------------------------


def test_an_accounts_delays_double_after_each_failure_and_stop_at_fifteen_minutes() -> None:
    throttle = Throttle()
    waits, now = [], 1000.0
    for _ in range(13):
        throttle.failed("anna", PROXY, now)
        waits.append(throttle.wait_for("anna", PROXY, now))
        now += waits[-1]  # the next attempt comes exactly when allowed

    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


def test_no_wait_before_any_failure_and_the_wait_runs_down_with_the_clock() -> None:
    throttle = Throttle()
    assert throttle.wait_for("anna", PROXY, 0.0) == 0

    throttle.failed("anna", PROXY, 100.0)
    throttle.failed("anna", PROXY, 100.0)

    assert throttle.wait_for("anna", PROXY, 100.5) == pytest.approx(1.5)
    assert throttle.wait_for("anna", PROXY, 102.0) == 0


def test_an_accounts_failures_slow_it_from_every_address_and_in_any_case() -> None:
    throttle = Throttle()
    for _ in range(3):
        throttle.failed("Anna", "10.0.0.1", 0.0)

    assert throttle.wait_for("anna", "10.9.9.9", 0.0) == 4
    assert throttle.wait_for("ANNA", "10.9.9.9", 0.0) == 4


def test_one_persons_wrong_passwords_do_not_slow_anyone_else_behind_the_same_proxy() -> None:
    throttle = Throttle()
    for _ in range(10):
        throttle.failed("anna", PROXY, 0.0)

    assert throttle.wait_for("anna", PROXY, 0.0) == 512
    for colleague in ("bert", "carl", "dora"):
        assert throttle.wait_for(colleague, PROXY, 0.0) == 0


def test_a_success_resets_the_account_and_counting_starts_again() -> None:
    throttle = Throttle()
    for _ in range(4):
        throttle.failed("anna", PROXY, 0.0)

    throttle.succeeded("anna", PROXY)

    assert throttle.wait_for("anna", PROXY, 0.0) == 0
    throttle.failed("anna", PROXY, 50.0)
    assert throttle.wait_for("anna", PROXY, 50.0) == 1


def test_an_accounts_failures_are_forgotten_after_an_hour_without_one() -> None:
    throttle = Throttle()
    for _ in range(5):
        throttle.failed("anna", PROXY, 0.0)

    throttle.failed("anna", PROXY, 3601.0)

    assert throttle.wait_for("anna", PROXY, 3601.0) == 1


# -- the throttle: per address -----------------------------------------------------------------


def test_an_address_waits_only_after_a_hundred_failures_in_ten_minutes() -> None:
    throttle = Throttle()
    for n in range(99):  # 99 people behind the proxy each mistype once, within 10 minutes
        throttle.failed(f"person {n}", PROXY, n * 5.0)

    assert throttle.wait_for("someone else", PROXY, 495.0) == 0
    throttle.failed("person 99", PROXY, 495.0)

    # The hundredth failure within the window: every name from there waits until the first leaves it.
    assert throttle.wait_for("someone else", PROXY, 495.0) == pytest.approx(600.0 - 495.0)
    assert throttle.wait_for("someone else", "10.0.0.2", 495.0) == 0  # another address does not
    assert throttle.wait_for("someone else", PROXY, 600.0) == 0  # the first failure left the window


def test_a_hundred_failures_spread_over_more_than_ten_minutes_never_stop_the_address() -> None:
    throttle = Throttle()
    for n in range(300):
        throttle.failed(f"person {n}", PROXY, n * 7.0)  # 86 in any ten minutes
        assert throttle.wait_for("someone else", PROXY, n * 7.0) == 0


def test_guessing_many_names_from_one_address_meets_the_address_limit() -> None:
    throttle = Throttle()
    for n in range(100):
        throttle.failed(f"guess {n}", "203.0.113.9", 0.0)

    assert throttle.wait_for("anna", "203.0.113.9", 0.0) == 600
    assert throttle.wait_for("anna", PROXY, 0.0) == 0


def test_a_success_does_not_clear_the_address_count() -> None:
    throttle = Throttle(address_limit=3)
    for name in ("x", "y", "z"):
        throttle.failed(name, "203.0.113.9", 0.0)

    throttle.succeeded("z", "203.0.113.9")

    assert throttle.wait_for("z", "203.0.113.9", 0.0) == 600


def test_behind_one_address_a_colleague_signs_in_while_one_persons_account_waits() -> None:
    site = Site()  # every request of the test client comes from one address, as from a plant's proxy
    page = site.client.get("/signin").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    mistaken, colleague = PEOPLE[PersonRole.REVIEWER], PEOPLE[PersonRole.PRODUCTION]

    def sign_in(name: str, password: str) -> int:
        form = {"name": name, "password": password, "csrf": found.group(1), "next": "/"}
        return site.client.post("/signin", data=form).status_code

    for wait in (1, 2, 4):
        assert sign_in(mistaken.name, "a wrong password again") == 401
        site.clock.advance(wait)
    assert sign_in(mistaken.name, "a wrong password again") == 401
    assert sign_in(mistaken.name, PASSWORD) == 429  # 8 s to wait after the fourth wrong one
    assert sign_in(colleague.name, PASSWORD) == 303


# -- the throttle: bounds ----------------------------------------------------------------------


def test_memory_stays_bounded_and_the_oldest_names_go_first() -> None:
    throttle = Throttle(max_keys=100)
    for n in range(1000):
        throttle.failed(f"name {n}", f"10.0.{n // 250}.{n % 250}", float(n))

    assert len(throttle) <= 200  # 100 names and 100 addresses
    assert throttle.wait_for("name 999", "10.9.9.9", 999.0) == 1  # the newest name is still known
    assert throttle.wait_for("name 0", "10.9.9.9", 999.0) == 0  # the oldest was dropped


@pytest.mark.parametrize(
    "options",
    [{"first_s": 0}, {"first_s": 10, "max_s": 5}, {"max_s": 900, "forget_s": 600}, {"address_limit": 0}],
)
def test_a_throttle_whose_times_do_not_fit_together_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="the throttle needs"):
        Throttle(**options)  # type: ignore[arg-type]
