"""How the local stack runs its infrastructure: the collectors measured cheapest on two cores."""

from __future__ import annotations

from pathlib import Path

from deploy.local.infra import ferretdb_spec, kafka_spec
from deploy.local.layout import StackPaths
from deploy.local.settings import StackSettings


def test_ferretdb_runs_with_the_gogc_and_cores_of_the_settings(tmp_path: Path) -> None:
    settings = StackSettings(
        state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", ferretdb_gogc=350, ferretdb_cores=3
    )
    spec = ferretdb_spec(settings, StackPaths.of(settings))
    assert (spec.env["GOGC"], spec.env["GOMAXPROCS"]) == ("350", "3")
    default = ferretdb_spec(StackSettings(), StackPaths.of(StackSettings())).env
    assert (default["GOGC"], default["GOMAXPROCS"]) == ("400", "1")


def test_kafka_runs_with_the_parallel_collector_not_g1(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    argv = kafka_spec(settings, StackPaths.of(settings)).argv
    assert "-XX:+UseParallelGC" in argv
    assert not any("G1" in option for option in argv)
