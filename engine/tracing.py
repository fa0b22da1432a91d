"""Traces across the whole path: webhook -> stored event -> drain -> steps -> delivery.

Every event carries a W3C `traceparent`: the one its webhook request came with, or a new one.
The runs it starts, the steps it causes and the deliveries they make keep it, so a channel's
action call carries the trace id of the event that caused it, and the customer timeline shows
it, whether or not spans are exported.

Spans (intake, one per applied event, step, delivery) are recorded only when OpenTelemetry's
OTLP exporter is configured through the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_TRACES_EXPORTER=otlp`, `OTEL_SERVICE_NAME`, ...);
otherwise this module costs a few string operations per event.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

HEADER = "traceparent"
_VALID = re.compile(
    r"^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$"
)
_PROPAGATOR = TraceContextTextMapPropagator()
_random = random.SystemRandom()

_tracer: Tracer | None = None
# The traceparent of the work in hand when no span is recorded (for log lines).
_in_hand: ContextVar[str | None] = ContextVar("throughline_trace", default=None)


def enabled() -> bool:
    return _tracer is not None


def use(tracer: Tracer | None) -> None:
    """Record spans with `tracer` (None: record none)."""
    global _tracer
    _tracer = tracer


def configure(service: str, env: Mapping[str, str] | None = None) -> bool:
    """Export spans over OTLP/HTTP when the standard variables ask for it; True if so."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter == "none" or (exporter != "otlp" and not endpoint):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": service}).merge(
        OTELResourceDetector().detect()
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    use(provider.get_tracer("throughline"))
    return True


def shutdown() -> None:
    """Send the spans still waiting (at the end of a process)."""
    provider = trace.get_tracer_provider()
    stop = getattr(provider, "shutdown", None)
    if _tracer is not None and stop is not None:
        stop()


def valid(value: str | None) -> str | None:
    """`value` if it is a traceparent of version 00 that names a trace and a span."""
    if value and _VALID.match(value.strip().lower()):
        return value.strip().lower()
    return None


def new() -> str:
    """A traceparent starting a new trace (not sampled: nobody asked to record it)."""
    return f"00-{_random.getrandbits(128):032x}-{_random.getrandbits(64):016x}-00"


def trace_id(traceparent: str | None) -> str | None:
    return traceparent[3:35] if traceparent else None


def child(traceparent: str) -> str:
    """The same trace, a new span id: what a step or delivery passes on when no span is
    recorded."""
    return f"{traceparent[:36]}{_random.getrandbits(64):016x}{traceparent[52:]}"


def _context(traceparent: str | None) -> Context | None:
    return _PROPAGATOR.extract({HEADER: traceparent}) if traceparent else None


def traceparent_of(span: Span) -> str:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier[HEADER]


@contextmanager
def span(
    name: str,
    parent: str | None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A span under `parent` (a traceparent), current while the block runs; None when
    spans are not recorded."""
    if _tracer is None:
        token = _in_hand.set(parent)
        try:
            yield None
        finally:
            _in_hand.reset(token)
        return
    with _tracer.start_as_current_span(
        name, context=_context(parent), kind=kind, attributes=attributes
    ) as current:
        yield current


def failed(error: BaseException) -> None:
    """Mark the current span failed by `error`, handled within it (an answer refusing a
    request), as an exception leaving the span would have."""
    current = trace.get_current_span()
    if current.is_recording():
        current.record_exception(error)
        current.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def passed_on(recorded: Span | None, parent: str) -> str:
    """The traceparent to pass on from within `recorded` (or, without it, under `parent`)."""
    return traceparent_of(recorded) if recorded is not None else child(parent)


def record(
    name: str, parent: str | None, attributes: Mapping[str, Any] | None = None
) -> str | None:
    """A span of no duration under `parent` (a step); returns its traceparent."""
    if _tracer is None or parent is None:
        return parent
    done = _tracer.start_span(name, context=_context(parent), attributes=attributes)
    done.end()
    return traceparent_of(done)


def current_trace_id() -> str | None:
    """The trace id of the span current in this thread, for log lines."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return f"{context.trace_id:032x}"
    return trace_id(_in_hand.get())
