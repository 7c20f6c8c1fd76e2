"""`coc stack up --monitoring`: the Prometheus configuration generated for the local stack."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.local.monitoring import (
    RULES,
    monitoring_on,
    monitoring_port,
    prometheus_config,
    prometheus_spec,
    remember_monitoring,
)
from deploy.local.services import SERVICES
from deploy.local.settings import StackSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    return StackSettings(_env_file=None, state_dir=tmp_path / "state", port_base=28080, monitoring_scrape_s=2)


def test_every_instance_of_every_service_is_a_target_labelled_with_its_service(
    settings: StackSettings,
) -> None:
    config = prometheus_config(settings, 2, RULES)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "coc" and job["metrics_path"] == "/metrics"
    targets = {(group["targets"][0], group["labels"]["service"]) for group in job["static_configs"]}
    assert ("127.0.0.1:28084", "signing") in targets and ("127.0.0.1:28094", "signing") in targets
    assert {service for _, service in targets} == set(SERVICES) and len(targets) == 16
    assert config["global"]["scrape_interval"] == "2s" and config["global"]["evaluation_interval"] == "2s"
    assert config["rule_files"] == [str(RULES)]


def test_prometheus_listens_beside_the_services_unless_its_port_is_set(settings: StackSettings) -> None:
    assert monitoring_port(settings) == 29090
    assert monitoring_port(settings.model_copy(update={"monitoring_port": 23090})) == 23090
    spec = prometheus_spec(settings, 1)
    assert spec.addresses == (("127.0.0.1", 29090),)
    assert f"--config.file={settings.state_dir.resolve() / 'prometheus' / 'prometheus.yml'}" in spec.argv


def test_the_choice_is_remembered_until_the_stack_goes_down(settings: StackSettings) -> None:
    assert not monitoring_on(settings)
    remember_monitoring(settings, True)
    assert monitoring_on(settings) and not monitoring_on(settings, False)
    remember_monitoring(settings, False)
    assert not monitoring_on(settings)


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="make test installs promtool (Debian prometheus)"
)
def test_prometheus_accepts_the_generated_configuration_and_its_rules(settings: StackSettings) -> None:
    spec = prometheus_spec(settings, 1)
    assert spec.prepare is not None
    spec.prepare()
    written = settings.state_dir.resolve() / "prometheus" / "prometheus.yml"
    assert json.loads(written.read_text())["scrape_configs"][0]["job_name"] == "coc"
    checked = subprocess.run(
        ["promtool", "check", "config", str(written)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
