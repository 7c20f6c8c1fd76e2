"""`coc users add` refuses bad input with one line naming the field, before it reaches any database."""

from __future__ import annotations

import functools
import io

import pytest

import shared.mongo
from cli.main import main

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """A MongoDB address nothing answers on: a command that tried it would say so instead."""
    monkeypatch.setenv("COC_MONGO_URL", "mongodb://127.0.0.1:9/")


def run(
    argv: list[str], stdin: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def test_a_short_password_is_refused_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = run(
        ["users", "add", "Anna", "--role", "viewer", "--password-stdin"], "elevenchars\n", capsys, monkeypatch
    )

    assert code == 2
    assert err == "coc users: password: must be at least 12 characters\n"


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("aaaaaaaaaaaa", "one character repeated"),
        ("qwertyuiopas", "a simple sequence"),
        ("Password2024!", "on a list of common passwords"),
    ],
)
def test_a_guessable_password_is_refused_with_one_line_saying_why(
    password: str, why: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["users", "add", "Anna", "--role", "viewer", "--password-stdin"]
    code, err = run(argv, password + "\n", capsys, monkeypatch)

    assert code == 2
    assert err.startswith(f"coc users: password: is {why}") and err.count("\n") == 1


def test_an_unknown_role_is_refused_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["users", "add", "Anna", "--role", "viewer", "--role", "admin", "--password-stdin"]
    code, err = run(argv, "a long enough password\n", capsys, monkeypatch)

    assert code == 2
    assert err.startswith("coc users: role: unknown role 'admin'") and err.count("\n") == 1


def test_a_bad_name_is_refused_naming_the_field(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["users", "add", "anna;drop", "--role", "viewer", "--password-stdin"]
    code, err = run(argv, "a long enough password\n", capsys, monkeypatch)

    assert code == 2
    assert err.startswith("coc users: name: ") and err.count("\n") == 1


def test_without_password_stdin_a_pipe_is_refused_rather_than_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = run(
        ["users", "add", "Anna", "--role", "viewer"], "a long enough password\n", capsys, monkeypatch
    )

    assert code == 2
    assert err == "coc users: password: standard input is not a terminal; use --password-stdin\n"


def test_at_a_terminal_two_different_entries_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter(["a long enough password", "a long enough passw0rd"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", Terminal())

    code = main(["users", "add", "Anna", "--role", "viewer"])

    assert code == 2
    assert capsys.readouterr().err == "coc users: password: the two entries differ\n"


def test_an_unreachable_database_is_one_line_without_the_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COC_MONGO_URL", "mongodb://127.0.0.1:9/?appname=secret")
    quick = functools.partial(shared.mongo.make_client, serverSelectionTimeoutMS=200)
    monkeypatch.setattr("shared.mongo.make_client", quick)

    code = main(["users", "list"])

    err = capsys.readouterr().err
    assert code == 1  # the command ran and the database failed it: not a mistake in the command line
    assert err.startswith("coc users: MongoDB at 127.0.0.1:9: ") and err.count("\n") == 1
    assert "secret" not in err
