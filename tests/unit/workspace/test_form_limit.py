"""A workspace form's text field over 1 MB: 413 with one line naming the field and the limit, whatever the form."""

from __future__ import annotations

import pytest

from services.workspace.form_limit import FIELD_MAX
from services.workspace.identity import PersonRole
from tests.unit.workspace.fakes import PEOPLE, Site

pytestmark = pytest.mark.unit

LEAD = PEOPLE[PersonRole.COMPLIANCE_LEAD]
LIMIT_SAID = f"at most {FIELD_MAX:,} bytes (1 MB)"


def test_an_url_encoded_field_over_one_megabyte_is_refused_413_naming_the_field_and_nothing_is_sent() -> None:
    site = Site()
    csrf = site.sign_in_as(LEAD)
    form = {"group": "KUDU", "policy": "hold", "comment": "x" * (FIELD_MAX + 1), "csrf": csrf}
    answer = site.client.post("/rollout", data=form)
    assert answer.status_code == 413
    assert answer.json()["detail"] == f"comment: a form field holds at most {FIELD_MAX:,} bytes (1 MB)"
    assert "\n" not in answer.json()["detail"]
    assert site.sender.sent == []


def test_a_multipart_text_part_over_one_megabyte_is_refused_413_naming_it_while_a_file_is_not_counted() -> (
    None
):
    site = Site()
    csrf = site.sign_in_as(LEAD)
    files = {"note": (None, "y" * (FIELD_MAX + 10)), "csrf": (None, csrf)}
    answer = site.client.post("/rollout/plants", files=files)
    assert answer.status_code == 413 and answer.json()["detail"].startswith("note: ")
    assert LIMIT_SAID in answer.json()["detail"]
    with_file = {
        "plant": (None, "Rosslyn"),
        "csrf": (None, csrf),
        "sheet": ("big.bin", b"0" * (FIELD_MAX + 10)),
    }
    assert site.client.post("/rollout/plants", files=with_file).status_code == 303


def test_a_field_of_exactly_one_megabyte_is_read_as_before() -> None:
    site = Site()
    csrf = site.sign_in_as(LEAD)
    # "comment" and its value together count as Starlette counts them: the name's bytes and the value's.
    form = {"group": "KUDU", "policy": "hold", "comment": "z" * (FIELD_MAX - len("comment")), "csrf": csrf}
    answer = site.client.post("/rollout", data=form)
    assert answer.status_code == 422 and answer.text.startswith("comment: ")  # its own rule, not the size


def test_a_field_name_with_markup_or_control_characters_is_named_without_them_and_bounded() -> None:
    site = Site()
    csrf = site.sign_in_as(LEAD)
    name = "n\x00\x1b" + "a" * 500
    answer = site.client.post("/rollout", data={name: "v" * (FIELD_MAX + 1), "csrf": csrf})
    assert answer.status_code == 413
    detail = answer.json()["detail"]
    assert detail.startswith("n" + "a" * 79 + ": ") and "\x00" not in detail
