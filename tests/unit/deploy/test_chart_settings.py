"""COC_SERVICE_URLS: how a service finds the others when each runs in its own pod (the Helm chart)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_a_named_service_is_reached_at_its_url_and_the_others_beside_this_one() -> None:
    settings = ServiceSettings(http_host="0.0.0.0", service_urls={"status": "http://ecoc-status:8087/"})
    assert settings.status_url == "http://ecoc-status:8087"
    assert settings.archive_url == "http://0.0.0.0:8086"


def test_the_urls_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COC_SERVICE_URLS", '{"archive": "https://archive.plant.example:8443"}')
    assert ServiceSettings().archive_url == "https://archive.plant.example:8443"


@pytest.mark.parametrize(
    ("urls", "named"),
    [
        ({"statsu": "http://ecoc-status:8087"}, "'statsu' is no service"),
        ({"status": "ecoc-status:8087"}, "status: 'ecoc-status:8087' is no http(s) URL"),
        ({"status": "ftp://ecoc-status"}, "is no http(s) URL"),
    ],
)
def test_an_unknown_service_or_a_url_without_scheme_and_host_is_refused(
    urls: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError, match=named.replace("(", r"\(").replace(")", r"\)")):
        ServiceSettings(service_urls=urls)
