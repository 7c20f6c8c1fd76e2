"""The stage code rate a pipeline run is set against: the mean of a measure before and one after."""

from __future__ import annotations

import pytest

from bench.stagecode import StageCode

pytestmark = pytest.mark.unit


def test_the_mean_of_two_measures_averages_each_step_and_keeps_both_totals() -> None:
    before = StageCode({"render": 100.0, "seal": 300.0})
    after = StageCode({"render": 300.0, "seal": 100.0})
    assert before.per_certificate == pytest.approx(75.0)
    mean = StageCode.mean_of([before, after])
    assert mean.rates == {"render": 200.0, "seal": 200.0}
    assert mean.per_certificate == pytest.approx(100.0)
    assert mean.rounds == pytest.approx((75.0, 75.0))
    assert mean.lines()[0].endswith("; the mean of 75 and 75, before and after the run)")


def test_a_single_measure_names_no_rounds() -> None:
    assert StageCode({"seal": 2000.0}).lines()[0].endswith("(seal 2,000/s)")
