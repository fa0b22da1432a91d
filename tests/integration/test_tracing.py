"""One event followed from its webhook to the channel's answer: the W3C trace context it came
with is kept by its run, its steps and its deliveries, sent on with each call, shown on the
customer timeline, and, when OpenTelemetry exports, recorded as one trace of spans."""

import json
import logging
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from engine import logs, tracing
from engine.models import Delivery, Event, Identity, Role, Run, Step
from tests.channels import post_event
from tests.conftest import work_all
from tests.factories import api_client, login, make_user
from tests.world import CART, WELCOME, sample

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
INBOUND = f"00-{TRACE}-{CALLER_SPAN}-01"

SIGNED_UP = {"type": "signed_up", "customer": {"id": "c-7", "email": "c7@example.com"}}


def _post(world, body, traceparent=None, webhook_id=None):
    response = post_event(
        world.client,
        "web",
        world.secrets["web"],
        body,
        webhook_id=webhook_id,
        headers={"traceparent": traceparent} if traceparent else None,
    )
    assert response.status_code == 202, response.get_json()
    work_all(world.redis)
    world.session.rollback()
    return response.get_json()["event_id"]


def _parts(traceparent):
    version, trace_id, parent, flags = traceparent.split("-")
    return version, trace_id, parent, flags


def test_a_delivery_carries_the_trace_of_the_webhook_that_caused_it(world):
    world.publish(WELCOME)
    event_id = _post(world, SIGNED_UP, traceparent=INBOUND)

    session = world.session
    assert session.get(Event, event_id).traceparent == INBOUND
    run = session.scalar(select(Run))
    assert _parts(run.traceparent)[1] == TRACE
    assert {step.trace_id for step in session.scalars(select(Step))} == {TRACE}
    assert _parts(session.scalar(select(Delivery)).traceparent)[1] == TRACE

    (call,) = world.recorders["email"].received
    version, trace_id, parent, flags = _parts(call["headers"]["traceparent"])
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert parent != CALLER_SPAN  # a span of ours, under the caller's


def test_an_event_without_a_trace_starts_one_which_the_steps_after_a_wait_keep(world):
    world.publish(sample("cart_recovery"))
    event_id = _post(world, CART)
    started = world.session.get(Event, event_id).traceparent
    assert tracing.valid(started) == started
    trace_id = _parts(started)[1]

    world.later(timedelta(hours=2))  # the wait for an order times out: the call is made
    steps = world.session.scalars(select(Step).order_by(Step.id)).all()
    assert len(steps) >= 3 and {step.trace_id for step in steps} == {trace_id}
    (call,) = world.recorders["support-desk"].received
    assert _parts(call["headers"]["traceparent"])[1] == trace_id


def test_a_malformed_traceparent_is_replaced_not_refused(world):
    world.publish(WELCOME)
    for webhook_id, bad in [
        ("w-1", "garbage"),
        ("w-2", f"00-{'0' * 32}-{CALLER_SPAN}-01"),  # names no trace
        ("w-3", f"ff-{TRACE}-{CALLER_SPAN}-01"),  # a version we do not read
    ]:
        body = {**SIGNED_UP, "customer": {"id": webhook_id}}
        event_id = _post(world, body, traceparent=bad, webhook_id=webhook_id)
        kept = world.session.get(Event, event_id).traceparent
        assert tracing.valid(kept) == kept and TRACE not in kept


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider.get_tracer("test"))
    yield exporter
    tracing.use(None)
    provider.shutdown()


def test_spans_follow_the_event_from_intake_to_the_channel(world, spans):
    world.publish(WELCOME)
    _post(world, SIGNED_UP, traceparent=INBOUND)

    recorded = spans.get_finished_spans()
    by_name = {}
    for span in recorded:
        by_name.setdefault(span.name, []).append(span)
    assert {f"{span.context.trace_id:032x}" for span in recorded} == {TRACE}
    (intake,) = by_name["intake"]
    (applied,) = by_name["apply event"]
    (delivery,) = by_name["delivery"]
    assert (
        intake.kind is SpanKind.SERVER
        and f"{intake.parent.span_id:016x}" == CALLER_SPAN
    )
    assert applied.parent.span_id == intake.context.span_id
    steps = [
        span
        for name, found in by_name.items()
        if name.startswith("step ")
        for span in found
    ]
    assert {span.attributes["throughline.node"] for span in steps} == {
        "start",
        "mail",
        "end",
    }
    assert all(span.parent.span_id == applied.context.span_id for span in steps)
    assert delivery.kind is SpanKind.CLIENT
    assert delivery.parent.span_id == applied.context.span_id
    assert delivery.attributes["http.response.status_code"] == 200
    (call,) = world.recorders["email"].received
    assert (
        _parts(call["headers"]["traceparent"])[2] == f"{delivery.context.span_id:016x}"
    )


def test_a_refused_event_s_intake_span_is_marked_failed(world, spans):
    response = post_event(world.client, "web", "whsec_" + "A" * 32, SIGNED_UP)
    assert response.status_code == 401
    (intake,) = [s for s in spans.get_finished_spans() if s.name == "intake"]
    assert intake.status.status_code is StatusCode.ERROR
    assert "signature does not match" in intake.status.description
    assert [e.name for e in intake.events] == ["exception"]


def test_the_timeline_shows_each_entry_s_trace_id(world, app):
    world.publish(WELCOME)
    _post(world, SIGNED_UP, traceparent=INBOUND)
    customer_id = world.session.scalar(
        select(Identity.customer_id).where(Identity.value == "c-7")
    )
    browser = app.test_client()
    login(browser, make_user(world.session, Role.viewer))
    page = browser.get(f"/customers/{customer_id}").get_data(as_text=True)
    # the event, its three steps and the delivery
    assert page.count(f'title="Trace id {TRACE}"') == 5
    assert f"trace {TRACE[:8]}" in page
    api = api_client(app.test_client(), world.session, Role.viewer)
    items = api.get("/api/v1/customers/id:c-7/timeline").get_json()["items"]
    assert [item["trace_id"] for item in items] == [TRACE] * 5


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self):  # noqa: N802
        data = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append((self.path, data))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_are_exported_over_otlp_when_the_standard_variables_say_where(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Collector.received = []
    script = (
        "from engine import tracing\n"
        "assert tracing.configure('throughline-test')\n"
        f"with tracing.span('intake', {INBOUND!r}):\n"
        "    pass\n"
        "tracing.shutdown()\n"
    )
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    env = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    server.shutdown()
    server.server_close()
    ((path, data),) = _Collector.received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(data)
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}[
        "service.name"
    ]
    assert service == "throughline-test"
    (span,) = resource_spans.scope_spans[0].spans
    assert (span.name, span.trace_id.hex(), span.parent_span_id.hex()) == (
        "intake",
        TRACE,
        CALLER_SPAN,
    )


def test_nothing_is_exported_unless_asked():
    assert tracing.configure("x", env={}) is False
    assert tracing.configure("x", env={"OTEL_TRACES_EXPORTER": "none"}) is False
    assert (
        tracing.configure(
            "x",
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h",
                "OTEL_SDK_DISABLED": "true",
            },
        )
        is False
    )
    assert not tracing.enabled()


def test_json_log_lines_carry_the_trace_id_of_the_work_in_hand(monkeypatch):
    monkeypatch.setenv("THROUGHLINE_LOG_FORMAT", "json")
    formatter = logs.formatter()
    record = logging.LogRecord(
        "throughline.ingest", logging.WARNING, "", 0, "bad %s", ("x",), None
    )
    with tracing.span("apply event", INBOUND):
        inside = json.loads(formatter.format(record))
    outside = json.loads(formatter.format(record))
    assert inside["trace_id"] == TRACE and inside["message"] == "bad x"
    assert inside["level"] == "warning" and inside["logger"] == "throughline.ingest"
    assert "trace_id" not in outside
    monkeypatch.setenv("THROUGHLINE_LOG_FORMAT", "")
    assert not isinstance(logs.formatter(), logs.JsonLines)
