"""A service process freezes what its start made and collects its youngest generation less often."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import gc, json
from services.launch import service_app
from shared.stage import settle_collector
service_app("render")
before = len(gc.get_objects())
settle_collector(12_345)
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "after": len(gc.get_objects()),
                  "threshold": gc.get_threshold()}))
"""


def test_the_objects_of_a_built_service_are_frozen_and_the_young_threshold_is_the_setting() -> None:
    # Its own process: freezing and thresholds are the whole interpreter's.
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] > 20_000  # a built service holds tens of thousands of objects
    assert seen["frozen"] >= seen["before"] * 0.9  # left out of every later collection
    assert seen["after"] < seen["before"] * 0.05
    assert seen["threshold"][0] == 12_345
