"""`coc stack up --replicas N`: each service N times, each instance on its own port, remembered for status."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.services import (
    SERVICES,
    forget_replicas,
    remember_replicas,
    replica_count,
    service_specs,
)
from deploy.local.settings import StackSettings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackSettings:
    monkeypatch.setenv("COC_SEAL_KEY", str(tmp_path / "seal.key"))  # no development seal made here
    monkeypatch.delenv("COC_REPLICAS", raising=False)
    return StackSettings(_env_file=None, state_dir=tmp_path / "state", port_base=28080)


def test_two_replicas_run_every_service_twice_each_instance_on_its_own_port(settings: StackSettings) -> None:
    specs = service_specs(settings, replicas=2)
    names = [spec.name for spec in specs]
    assert names == [*SERVICES, *(f"{name}-2" for name in SERVICES)]
    ports = [spec.addresses[0][1] for spec in specs]
    assert ports == [*range(28081, 28089), *range(28091, 28099)]
    second_signing = next(spec for spec in specs if spec.name == "signing-2")
    assert second_signing.argv[-4:] == ("services", "signing", "--port", "28094")


def test_one_replica_keeps_the_single_stack_on_the_service_ports(settings: StackSettings) -> None:
    specs = service_specs(settings)
    assert [(spec.name, spec.addresses[0][1]) for spec in specs] == [
        (name, settings.port_of(name)) for name in SERVICES
    ]


def test_status_knows_the_replicas_the_last_up_started_until_down(settings: StackSettings) -> None:
    assert replica_count(settings) == 1
    remember_replicas(settings, 2)
    assert replica_count(settings) == 2
    assert replica_count(settings, requested=3) == 3
    forget_replicas(settings)
    assert replica_count(settings) == 1


def test_replicas_set_in_the_environment_win_over_the_remembered_count(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    remember_replicas(settings, 2)
    monkeypatch.setenv("COC_REPLICAS", "3")
    assert replica_count(StackSettings(_env_file=None, state_dir=settings.state_dir)) == 3


def test_more_replicas_than_partitions_are_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="replicas"):
        StackSettings(_env_file=None, state_dir=tmp_path, replicas=7)
