"""The lists' filter form is one macro (filters.html): the worklists, the state lists and the archived list use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.workspace.identity import PersonRole
from services.workspace.routes.answers import TEMPLATES
from tests.unit.workspace.fakes import PEOPLE, Site

pytestmark = pytest.mark.unit


def test_the_filter_form_is_written_once_and_every_list_page_takes_it_from_there() -> None:
    written = sorted(p.name for p in Path(TEMPLATES).glob("*.html") if 'class="filters"' in p.read_text())
    assert written == ["filters.html"]
    for page in ("worklist.html", "archived.html"):
        assert '{% from "filters.html" import filter_form %}' in (TEMPLATES / page).read_text()


def test_without_facets_the_record_type_is_still_a_choice_on_both_lists_and_the_others_are_text_boxes() -> (
    None
):
    site = Site()
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    worklist = site.client.get("/worklists/production?record_type=V").text
    archived = site.client.get("/states/archived?record_type=V").text
    for html, prefix in ((worklist, "f"), (archived, "a")):
        assert f'<select id="{prefix}-type" name="record_type">' in html
        assert '<option value="V" selected>Completed vehicle (V)</option>' in html
        assert f'<input id="{prefix}-group" name="group" maxlength="64" value="">' in html
        assert f'<input id="{prefix}-country" name="country" maxlength="4" value="">' in html
    assert 'id="f-age" name="min_age_h"' in worklist and 'id="a-from" name="archived_from"' in archived
    assert "min_age_h" not in archived.split('class="filters"')[1].split("</form>")[0]
