"""bench.cluster: the figures it reads from bench.pipeline's output, and the private stacks' settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cluster import comparison, environment, parse

pytestmark = pytest.mark.unit

PRINTED = """
end-to-end pipeline
builds published                1000
throughput                      113.2 builds archived per second
efficiency                      0.104  (end-to-end rate / stage code on one core)

per process, first publish to at rest
process         CPU s  CPU s per 1,000 certs  peak RSS MB
ferretdb         17.5                    1.8          123
kafka-3          17.4                    1.7          561
kafka-2          17.0                    1.6          578
kafka-1          16.6                    1.5          550
signing          15.3                    1.5          149
all             122.0                   12.2
(bench)           4.0                    0.4          224

status read model current       6 s after the pipeline was at rest
per process, first publish until the read model is current
process         CPU s  CPU s per 1,000 certs  peak RSS MB
kafka-1          99.0                    9.9          550
all             999.0                   99.9
"""


def test_the_figures_are_read_from_the_table_until_at_rest_not_the_one_after() -> None:
    run = parse("three brokers", PRINTED, 0)
    assert (run.per_second, run.efficiency, run.cpu_per_1000) == (113.2, 0.104, 12.2)
    assert run.kafka_per_1000 == pytest.approx(1.7 + 1.6 + 1.5)
    assert run.archived_all


def test_output_without_figures_is_refused_naming_the_mode_and_exit() -> None:
    with pytest.raises(ValueError, match=r"one broker: bench.pipeline printed no figures \(exit 1\)"):
        parse("one broker", "bench.pipeline: 3 of 10 VINs not settled", 1)


def test_the_comparison_gives_the_cluster_over_one_broker() -> None:
    single = parse("one broker", PRINTED.replace("113.2", "200.0"), 0)
    lines = comparison(single, parse("three brokers", PRINTED, 0))
    rate = next(line for line in lines if line.startswith("builds archived per second"))
    assert rate.split()[-3:] == ["200.0", "113.2", "0.57"]


def test_the_private_stack_gets_its_own_ports_and_state_and_none_of_the_callers_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COC_STACK_BROKERS", "3")
    monkeypatch.setenv("COC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    env = environment(tmp_path, 26080)
    assert "COC_STACK_BROKERS" not in env and "COC_KAFKA_SECURITY_PROTOCOL" not in env
    assert env["COC_STATE_DIR"] == str(tmp_path)
    assert env["COC_KAFKA_BOOTSTRAP"] == "127.0.0.1:27092"  # clear of the services' second instances
    assert env["COC_KAFKA_CONTROLLER_PORT"] == "27093"
    assert env["COC_MONGO_URL"] == "mongodb://127.0.0.1:26017"
    assert env["COC_PORT_BASE"] == "26080"


def test_a_setting_given_reaches_both_stacks_but_cannot_move_their_ports_or_state(tmp_path: Path) -> None:
    env = environment(tmp_path, 26080, {"COC_KAFKA_COMPRESSION": "zstd", "COC_STATE_DIR": "/elsewhere"})
    assert env["COC_KAFKA_COMPRESSION"] == "zstd"
    assert env["COC_STATE_DIR"] == str(tmp_path)
