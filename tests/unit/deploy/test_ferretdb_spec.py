"""How the local stack runs FerretDB: its Go collector is told to collect less often."""

from __future__ import annotations

from pathlib import Path

from deploy.local.infra import ferretdb_spec
from deploy.local.layout import StackPaths
from deploy.local.settings import StackSettings


def test_ferretdb_runs_with_the_gogc_of_the_settings(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", ferretdb_gogc=350)
    spec = ferretdb_spec(settings, StackPaths.of(settings))
    assert spec.env["GOGC"] == "350"
    assert ferretdb_spec(StackSettings(), StackPaths.of(StackSettings())).env["GOGC"] == "400"
