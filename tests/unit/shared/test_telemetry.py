"""The trace exporter chosen by settings: spans reach the console or an OTLP/HTTP endpoint."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from shared.settings import CocSettings
from shared.telemetry import current_trace_id, make_tracer_provider

pytestmark = pytest.mark.unit


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", Collector.received
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_exporter_posts_the_services_spans_to_the_endpoint(
    collector: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    endpoint, received = collector
    provider = make_tracer_provider(CocSettings(otel_exporter="otlp", otel_endpoint=endpoint), "render")
    with provider.get_tracer("test").start_as_current_span("render VIN1:1"):
        trace_id = current_trace_id()
    provider.shutdown()  # flushes the batch
    assert trace_id is not None and len(trace_id) == 32
    assert [(path, kind) for path, kind, _ in received] == [("/v1/traces", "application/x-protobuf")]
    body = received[0][2]
    assert b"coc-render" in body and b"render VIN1:1" in body
    assert bytes.fromhex(trace_id) in body


def test_console_exporter_prints_the_span(capsys: pytest.CaptureFixture[str]) -> None:
    provider = make_tracer_provider(CocSettings(otel_exporter="console"), "signing")
    with provider.get_tracer("test").start_as_current_span("sign VIN2:1"):
        trace_id = current_trace_id()
    provider.shutdown()
    printed = capsys.readouterr().out
    assert "sign VIN2:1" in printed and "coc-signing" in printed
    assert f"0x{trace_id}" in printed


def test_no_trace_id_outside_a_span_and_a_clear_error_for_an_unknown_exporter() -> None:
    assert current_trace_id() is None
    with pytest.raises(ValueError, match="COC_OTEL_EXPORTER must be none, console or otlp, not 'jaeger'"):
        make_tracer_provider(CocSettings(otel_exporter="jaeger"), "status")
