"""The order in which `coc stack down` stops what `up` started."""

from __future__ import annotations

from deploy.local.layout import PidRecord
from deploy.local.supervise import _stop_order


def record(name: str, started_at: float) -> PidRecord:
    return PidRecord(name=name, pid=1, proc_start=None, started_at=started_at, addresses=(), argv=())


def test_services_stop_before_a_kafka_that_was_restarted_after_them() -> None:
    records = [
        record("ferretdb", 1.0),
        record("intake", 3.0),
        record("signing", 4.0),
        record("kafka", 9.0),  # restarted alone, later than the services
    ]
    order = [r.name for r in _stop_order(records, ["ferretdb", "kafka"])]
    assert order == ["signing", "intake", "kafka", "ferretdb"]


def test_infrastructure_alone_stops_kafka_then_ferretdb() -> None:
    records = [record("kafka", 1.0), record("ferretdb", 2.0)]
    assert [r.name for r in _stop_order(records, ["ferretdb", "kafka"])] == ["kafka", "ferretdb"]
