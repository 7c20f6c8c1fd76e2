"""A record's trace continues through a stage: bare contexts without an exporter, recorded spans with one."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.settings import CocSettings
from shared.telemetry import Tracing, current_trace_id, parent_in

pytestmark = pytest.mark.unit

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
PARENTS = [
    f"00-{TRACE}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-00",
    f"  00-{TRACE}-{SPAN}-01\t",
    f"01-{TRACE}-{SPAN}-01-what-a-later-version-adds",
    f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has nothing more
    f"ff-{TRACE}-{SPAN}-01",
    f"00-{'0' * 32}-{SPAN}-01",
    f"00-{TRACE}-{'0' * 16}-01",
    f"00-{TRACE.upper()}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}",
    "garbage",
    f"00-{TRACE}-{SPAN}-01" + " " * 600,
]


@pytest.mark.parametrize("parent", PARENTS)
def test_the_header_is_read_as_opentelemetrys_own_propagator_reads_it(parent: str) -> None:
    headers = [("traceparent", parent.encode()), ("tracestate", b"vendor=1")]
    theirs = trace.get_current_span(
        TraceContextTextMapPropagator().extract({"traceparent": parent, "tracestate": "vendor=1"})
    ).get_span_context()
    ours = parent_in(headers)
    if not theirs.is_valid:
        assert ours is None
    else:
        assert ours == theirs
        assert ours is not None and ours.trace_state == theirs.trace_state


def test_without_an_exporter_a_record_keeps_its_trace_id_under_a_span_id_of_its_own() -> None:
    tracing = Tracing(TracerProvider(), recording=False)
    headers = [("coc-service", b"render"), ("traceparent", f"00-{TRACE}-{SPAN}-01".encode())]
    assert tracing.trace_id_in(headers) == TRACE
    with tracing.consumer_span("coc.documents.rendered.v1 process", headers):
        assert current_trace_id() == TRACE
        onward: dict[str, str] = {}
        tracing.inject(onward)
    version, trace_id, span_id, flags = onward["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert span_id != SPAN and int(span_id, 16) != 0
    assert current_trace_id() is None  # the context ends with the record


def test_without_an_exporter_a_record_without_a_trace_starts_one() -> None:
    tracing = Tracing(TracerProvider(), recording=False)
    assert tracing.trace_id_in([("traceparent", b"garbage")]) is None
    seen = []
    for _ in range(2):
        with tracing.consumer_span("coc.builds.v1 process", [("traceparent", b"garbage")]):
            seen.append(current_trace_id())
            onward: dict[str, str] = {}
            tracing.inject(onward)
            assert onward["traceparent"].split("-")[1] == seen[-1]
            assert onward["traceparent"].endswith(
                "-01"
            )  # sampled: a recording stage after it keeps its spans
    assert None not in seen and seen[0] != seen[1]
    with tracing.producer_span("coc.approvals.v1 publish"):
        assert current_trace_id() not in (None, *seen)


def test_with_an_exporter_each_record_is_a_recorded_consumer_span_under_its_parent() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracing = Tracing(provider, recording=True)
    headers = [("traceparent", f"00-{TRACE}-{SPAN}-01".encode())]
    with tracing.consumer_span("coc.records.validated.v1 process", headers):
        onward: dict[str, str] = {}
        tracing.inject(onward)
    (span,) = exported.get_finished_spans()
    assert span.name == "coc.records.validated.v1 process" and span.kind is trace.SpanKind.CONSUMER
    assert span.parent is not None and format(span.parent.span_id, "016x") == SPAN
    assert format(span.context.trace_id, "032x") == TRACE
    assert onward["traceparent"] == f"00-{TRACE}-{span.context.span_id:016x}-01"


def test_settings_choose_recorded_spans_only_when_an_exporter_takes_them() -> None:
    assert not Tracing.of(CocSettings(otel_exporter="none"), "render").recording
    assert Tracing.of(CocSettings(otel_exporter="Console"), "render").recording
