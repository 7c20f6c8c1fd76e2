"""Exit statuses: 2 for a command line or an input that is wrong, 1 for a command that ran and failed.

A service that answers 500 is a failure (1), not a typing mistake (2); no outcome shows a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cli import client
from cli.main import main

pytestmark = pytest.mark.unit


@pytest.fixture
def service_answers(monkeypatch: pytest.MonkeyPatch) -> Callable[[httpx.Response], None]:
    """The services answer every request with the given response (no network)."""
    monkeypatch.setenv("COC_TOKEN_VIEWER", "a-viewer-token")

    def answer_with(response: httpx.Response) -> None:
        transport = httpx.MockTransport(lambda _request: response)
        monkeypatch.setattr(client, "http_client", lambda: httpx.Client(transport=transport))

    return answer_with


def test_a_service_that_answers_500_is_a_failure_in_one_line(
    service_answers: Callable[[httpx.Response], None], capsys: pytest.CaptureFixture[str]
) -> None:
    service_answers(httpx.Response(500, json={"detail": "the store is down"}))

    assert main(["status", "WDB00000000000000"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("coc status: GET http") and err.count("\n") == 1
    assert "500" in err and "the store is down" in err and "Traceback" not in err


def test_a_service_that_does_not_answer_is_a_failure(
    service_answers: Callable[[httpx.Response], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    monkeypatch.setenv("COC_TOKEN_VIEWER", "a-viewer-token")
    monkeypatch.setattr(client, "http_client", lambda: httpx.Client(transport=httpx.MockTransport(refuse)))

    assert main(["readiness"]) == 1
    assert "does not answer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["no-such-command"], ["status"], ["status", "VIN", "--no-such-option"], ["publish", "things", "x"], []],
    ids=["unknown-command", "missing-argument", "unknown-option", "bad-choice", "nothing"],
)
def test_a_mistake_on_the_command_line_exits_2_with_the_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2

    captured = capsys.readouterr()
    assert "Usage: coc" in captured.err + captured.out and "Traceback" not in captured.err


def test_render_asks_for_exactly_one_of_unsigned_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = ["--approvals", str(tmp_path / "a.json"), "--build", str(tmp_path / "b.json")]

    assert main(["render", *files]) == 2
    assert "give either --unsigned or --key" in capsys.readouterr().err
    assert main(["render", *files, "--key", str(tmp_path / "seal.key")]) == 2
    assert "--key needs --cert" in capsys.readouterr().err


def test_an_input_file_that_is_not_there_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "builds.jsonl"

    assert main(["publish", "builds", str(missing)]) == 2
    assert capsys.readouterr().err == f"coc publish: cannot read {missing}: no such file\n"


def test_an_unexpected_error_is_one_line_and_a_failure_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(client.Client, "__init__", broken)

    assert main(["readiness"]) == 1
    assert capsys.readouterr().err == "coc readiness: failed: ZeroDivisionError: a bug\n"
    monkeypatch.setenv("COC_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["readiness"])


def test_an_interrupted_command_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(client.Client, "__init__", interrupted)

    assert main(["readiness"]) == 130


def test_a_setting_that_is_not_valid_exits_2_naming_it_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COC_CONSUME_BATCH", "many")

    assert main(["readiness"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("coc readiness: a setting is not valid:") and "consume_batch" in line
