"""What the client commands print: a readiness table a terminal shows whole, progress a pipe keeps."""

from __future__ import annotations

import io

import pytest

from cli import progress
from cli.client import WIDTH, readiness_table
from cli.output import render, rows, table
from cli.progress import Progress
from shared.contracts.events import State

pytestmark = pytest.mark.unit


def readiness(groups: dict[str, dict[str, int]]) -> dict[str, object]:
    by_state = {state.value: 0 for state in State}
    for counts in groups.values():
        for state, n in counts.items():
            by_state[state] += n
    return {"total": sum(by_state.values()), "by_state": by_state, "by_group": groups}


def worklist(codes: dict[str, int]) -> dict[str, object]:
    items = [{"findings": [{"code": code}]} for code, n in codes.items() for _ in range(n)]
    return {"items": items}


def test_readiness_table_fits_in_a_hundred_columns_with_every_state_and_many_groups() -> None:
    groups = {f"GROUP-{n:02d}": {state.value: n + 1 for state in State} for n in range(12)}
    codes = {f"SOME_LONG_FINDING_CODE_{n}": 20 - n for n in range(9)}

    table = readiness_table(readiness(groups), {"production": worklist(codes)})

    assert max(len(line) for line in table.splitlines()) <= WIDTH
    assert "+" in table.splitlines()[2] and "more" in table.splitlines()[2]  # groups that did not fit
    for state in State:
        assert any(line.startswith(state.value) for line in table.splitlines())
    production = next(line for line in table.splitlines() if line.startswith("production"))
    assert production.endswith("more") and "SOME_LONG_FINDING_CODE_0 20" in production


def test_readiness_table_says_when_the_counts_are_catching_up() -> None:
    counts = readiness({"KUDU": {"archived": 7}})
    assert "catching up" not in readiness_table({**counts, "events_behind": 0}, {})
    lines = readiness_table({**counts, "events_behind": 12000}, {}).splitlines()
    assert lines[:2] == [
        "7 vehicles, per state and vehicle group",
        "catching up: 12,000 status events not counted yet",
    ]


def test_readiness_table_shows_only_states_that_occur_and_counts_every_vehicle() -> None:
    table = readiness_table(
        readiness({"KUDU": {"archived": 7, "blocked": 2}, "RHINO": {"archived": 3}}),
        {"production": worklist({"ACTUAL_MASS_MISSING": 2})},
    )
    lines = table.splitlines()

    assert lines[0] == "12 vehicles, per state and vehicle group"
    assert lines[2].split() == ["state", "all", "KUDU", "RHINO"]
    assert [line.split()[0] for line in lines[3:5]] == ["archived", "blocked"]
    assert lines[3].split()[1:] == ["10", "7", "3"]
    assert "ACTUAL_MASS_MISSING 2" in table and "more" not in table


def test_a_table_off_a_terminal_keeps_each_row_on_one_line_without_trailing_spaces() -> None:
    long = "x" * 300
    text = render(
        rows(table("name", "note", show_header=False), [("short", long), ("a much longer name", "y")])
    )

    assert text.splitlines() == [f"short               {long}", "a much longer name  y"]


def test_a_table_takes_its_cells_as_text_not_as_markup() -> None:
    text = render(rows(table("group", "comment", show_header=False), [("CHR", "[bold]held[/bold] [audit]")]))

    assert text == "CHR  [bold]held[/bold] [audit]"


def test_progress_to_a_pipe_is_one_line_per_step(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("builds published") as shown:
        shown(200, 500)
        shown(500, 500)

    err = capsys.readouterr().err
    assert "\r" not in err
    assert err == "builds published: 200/500\nbuilds published: 500/500\n"


def test_progress_to_a_pipe_says_at_most_one_line_a_period_and_always_the_last(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([0.0, 0.4, 0.9, 1.2, 1.3, 1.5])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with Progress("audited", every=1.0) as shown:
        for done in (1, 2, 3, 4, 5, 6):
            shown(done, 6)

    assert capsys.readouterr().err == "audited: 1/6\naudited: 4/6\naudited: 6/6\n"


def test_progress_at_a_terminal_is_a_bar_redrawn_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with Progress("builds published") as shown:
        shown(200, 500)
        shown(500, 500)

    drawn = terminal.getvalue()
    assert "builds published" in drawn and "500/500" in drawn
    assert "builds published: 200/500\n" not in drawn  # not the plain lines of a pipe
    assert "\x1b[" in drawn  # the terminal's control sequences that redraw the bar
