"""The lists' view of unsettled records: a team's worklist or a state's records, filtered, oldest first, paged."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from services.status.worklist import BadCursor, Cursor, Entry, ListQuery, View, age_s
from shared.contracts.events import State
from shared.contracts.findings import Owner

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def ago(minutes: int) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


def entry(vin: str, minutes: int, group: str | None, state: str = "blocked", *keys: str) -> Entry:
    return Entry(ago(minutes), vin, state, group, frozenset(keys))


ENTRIES = [
    entry("V05", 5, "CHR", "blocked", "production|MASS_ABOVE_MAX", "type-approval|APPROVAL_UNKNOWN"),
    entry("V50", 50, "VAN", "blocked", "production|TYRE_UNLISTED"),
    entry("V30", 30, "CHR", "held", "production|MASS_ABOVE_MAX", "production|TYRE_UNLISTED"),
    entry("V31", 30, None, "needs_review", "compliance|COLOUR_UNLISTED"),
    entry("V29", 30, "VAN", "blocked", "production|MASS_ABOVE_MAX"),
    entry("V00", 0, "CHR", "held"),  # held without findings: no team's worklist
    entry("V40", 40, "CHR", "failed", "integration|RENDER_FAILED"),  # not waiting: in no worklist
    entry("V41", 41, "VAN", "received"),
]


def vins(
    view: View, owner: Owner | None = None, state: State | None = None, **filters: object
) -> tuple[list[str], int]:
    query = ListQuery(owner, state, **filters)  # type: ignore[arg-type]
    chosen, total, _ = view.select(query, NOW)
    return [each.vin for each in chosen], total


def test_worklist_of_a_team_lists_only_waiting_records_with_its_findings_oldest_first_then_by_vin() -> None:
    view = View(ENTRIES)
    assert vins(view, Owner.PRODUCTION) == (["V50", "V29", "V30", "V05"], 4)
    assert vins(view, Owner.TYPE_APPROVAL) == (["V05"], 1)
    assert vins(view, Owner.COMPLIANCE) == (["V31"], 1)
    assert vins(view, Owner.INTEGRATION) == ([], 0)  # V40 failed: listed by state, not as work


def test_state_list_holds_every_record_in_the_state_whatever_its_findings() -> None:
    view = View(ENTRIES)
    assert vins(view, state=State.BLOCKED) == (["V50", "V29", "V05"], 3)
    assert vins(view, state=State.HELD) == (["V30", "V00"], 2)
    assert vins(view, state=State.FAILED, code="RENDER_FAILED") == (["V40"], 1)
    assert vins(view, state=State.RECEIVED, group="VAN") == (["V41"], 1)
    assert vins(view, state=State.SIGNED) == ([], 0)


def test_code_filter_of_a_worklist_looks_only_at_the_codes_its_team_owns() -> None:
    view = View(ENTRIES)
    assert vins(view, Owner.PRODUCTION, code="APPROVAL_UNKNOWN") == ([], 0)
    assert vins(view, Owner.TYPE_APPROVAL, code="APPROVAL_UNKNOWN") == (["V05"], 1)
    assert vins(view, state=State.BLOCKED, code="APPROVAL_UNKNOWN") == (["V05"], 1)


def test_filters_by_group_code_and_age_combine() -> None:
    view = View(ENTRIES)
    assert vins(view, Owner.PRODUCTION, group="CHR") == (["V30", "V05"], 2)
    assert vins(view, Owner.PRODUCTION, code="TYRE_UNLISTED") == (["V50", "V30"], 2)
    assert vins(view, Owner.PRODUCTION, min_age_s=30 * 60) == (["V50", "V29", "V30"], 3)
    assert vins(view, Owner.PRODUCTION, min_age_s=30 * 60 + 1) == (["V50"], 1)
    assert vins(view, Owner.PRODUCTION, group="CHR", code="MASS_ABOVE_MAX", min_age_s=600) == (["V30"], 1)
    assert vins(view, Owner.PRODUCTION, group="NONE") == ([], 0)


def test_pages_split_the_matching_records_and_total_counts_them_all() -> None:
    view = View(ENTRIES)
    assert vins(view, Owner.PRODUCTION, size=3) == (["V50", "V29", "V30"], 4)
    assert vins(view, Owner.PRODUCTION, size=3, page=2) == (["V05"], 4)
    assert vins(view, Owner.PRODUCTION, size=3, page=3) == ([], 4)


def test_a_changed_record_moves_lists_and_a_dropped_one_leaves_every_list() -> None:
    view = View(ENTRIES)
    view.put(entry("V50", 1, "VAN", "validated"))  # corrected: no longer waiting
    assert vins(view, Owner.PRODUCTION)[0] == ["V29", "V30", "V05"]
    assert vins(view, state=State.VALIDATED) == (["V50"], 1)
    view.put(entry("V29", 0, "VAN", "blocked", "compliance|COLOUR_UNLISTED"))  # changed team and time
    assert vins(view, Owner.PRODUCTION)[0] == ["V30", "V05"]
    assert vins(view, Owner.COMPLIANCE)[0] == ["V31", "V29"]
    view.drop("V30")
    view.drop("V99")  # unknown: nothing happens
    assert vins(view, Owner.PRODUCTION)[0] == ["V05"]
    assert vins(view, state=State.HELD)[0] == ["V00"]
    assert len(view) == len(ENTRIES) - 1


def test_changes_in_any_order_leave_the_view_as_built_from_the_final_entries() -> None:
    rng = random.Random(3)
    final: dict[str, Entry] = {}
    view = View()
    states = ["blocked", "held", "needs_review", "received", "failed"]
    keys = ["production|A", "compliance|B", "type-approval|C"]
    for step in range(2_000):
        vin = f"V{rng.randrange(60):02d}"
        if rng.random() < 0.2:
            view.drop(vin)
            final.pop(vin, None)
            continue
        changed = Entry(
            ago(rng.randrange(100)),
            vin,
            rng.choice(states),
            rng.choice(["CHR", "VAN"]),
            frozenset(rng.sample(keys, rng.randrange(3))),
        )
        view.put(changed)
        final[vin] = changed
        if step % 250 == 0:
            built = View(final.values())
            assert view.by_owner == {k: v for k, v in built.by_owner.items() if v} | {
                k: [] for k, v in view.by_owner.items() if not v
            }
            assert {k: v for k, v in view.by_state.items() if v} == {
                k: v for k, v in built.by_state.items() if v
            }


def test_a_query_names_a_team_or_a_state_never_both_nor_neither() -> None:
    with pytest.raises(ValueError, match="either"):
        ListQuery(Owner.PRODUCTION, State.BLOCKED)
    with pytest.raises(ValueError, match="either"):
        ListQuery()


def test_age_is_whole_seconds_and_never_negative() -> None:
    assert age_s(ago(2), NOW) == 120
    assert age_s(NOW + dt.timedelta(seconds=5), NOW) == 0


def typed(vin: str, minutes: int, record_type: str | None, country: str | None) -> Entry:
    return Entry(
        ago(minutes), vin, "blocked", "CHR", frozenset({"production|MASS_ABOVE_MAX"}), record_type, country
    )


def test_record_type_and_country_filters_pick_their_records_and_none_picks_those_without_a_country() -> None:
    view = View(
        [
            typed("V1", 9, "C", "D"),
            typed("V2", 8, "I", "D"),
            typed("V3", 7, "C", None),
            typed("V4", 6, None, "GB"),
        ]
    )
    assert vins(view, Owner.PRODUCTION, record_type="C") == (["V1", "V3"], 2)
    assert vins(view, Owner.PRODUCTION, country="D") == (["V1", "V2"], 2)
    assert vins(view, Owner.PRODUCTION, country="none") == (["V3"], 1)
    assert vins(view, state=State.BLOCKED, record_type="I", country="D") == (["V2"], 1)
    assert vins(view, state=State.BLOCKED, record_type="V") == ([], 0)


def test_cursor_pages_walk_every_matching_record_once_even_when_records_change_between_pages() -> None:
    view = View([typed(f"V{n:02d}", 60 - n, "C", "D") for n in range(10)])
    seen: list[str] = []
    after = None
    while True:
        chosen, total, after = view.select(ListQuery(Owner.PRODUCTION, size=3, after=after), NOW)
        seen += [each.vin for each in chosen]
        if after is None:
            break
        view.put(typed("V00", 0, "C", "D"))  # the first one changes: it goes to the end, once
        after = Cursor.parse(after.token())  # through its opaque token, as a caller has it
    assert total == 10
    assert seen == [*(f"V{n:02d}" for n in range(10)), "V00"]


def test_a_cursor_not_made_by_a_list_is_refused_naming_the_parameter() -> None:
    for token in ("%%%", "bm90LWEtY3Vyc29y", Cursor(NOW, "").token()):
        with pytest.raises(BadCursor, match=r"^after: "):
            Cursor.parse(token)
