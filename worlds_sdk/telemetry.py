"""``instrument(world)``: OpenTelemetry spans and metrics around any World, ours or a third party's.

The wrapper forwards every attribute to the World and changes no behaviour: a
result or an exception passes through untouched (the instrumented reference
Worlds pass the whole conformance suite, ``tests/test_instrumented.py``). Each
``async`` method call becomes a span ``world.<group>.<method>`` with the rule-
relevant attributes (event type, run id, queue name, outcome or typed error);
metrics are ``worlds.events.create.duration`` by event type and outcome,
``worlds.queue.delivery.latency`` (enqueue to handler, from the message id's
ULID time), ``worlds.queue.delivery.attempts`` and ``worlds.errors`` by error type.

Only ``opentelemetry-api`` is used (extra ``otel``); without an SDK configured
its providers are no-ops, so an instrumented World then records nothing. Without
the API installed, :func:`instrument` returns the World itself.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from .errors import ValidationError
from .ids import parse_ulid_time
from .models import MessageMeta, Reschedule

W = TypeVar("W")

GROUPS = ("runs", "steps", "events", "hooks")
INSTRUMENTATION = "worlds_sdk"


def instrument(world: W, *, tracer_provider: Any = None, meter_provider: Any = None) -> W:
    """``world`` with spans and metrics; the providers default to OpenTelemetry's global ones."""
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return world
    tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
    meter = metrics.get_meter(INSTRUMENTATION, meter_provider=meter_provider)
    return InstrumentedWorld(world, _Telemetry(tracer, meter))  # type: ignore[return-value]


class _Telemetry:
    """The tracer and the instruments, made once per instrumented World."""

    def __init__(self, tracer: Any, meter: Any) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.tracer = tracer
        self.status, self.error_code = Status, StatusCode.ERROR
        self.create_duration = meter.create_histogram(
            "worlds.events.create.duration", unit="s", description="events.create latency by event type and outcome"
        )
        self.delivery_latency = meter.create_histogram(
            "worlds.queue.delivery.latency", unit="s", description="from enqueue to the handler, per delivery"
        )
        self.attempts = meter.create_histogram(
            "worlds.queue.delivery.attempts", description="the attempt number of each delivery"
        )
        self.errors = meter.create_counter("worlds.errors", description="errors raised by World methods, by type")

    async def call(self, name: str, method: Callable[..., Awaitable[Any]], args: Any, kwargs: Any) -> Any:
        attributes = _attributes(name, args, kwargs)
        started = time.perf_counter()
        outcome = "ok"
        with self.tracer.start_as_current_span(
            f"world.{name}", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                result = await method(*args, **kwargs)
            except BaseException as exc:
                outcome = type(exc).__name__
                span.set_attribute("worlds.outcome", outcome)
                span.set_status(self.status(self.error_code, outcome))
                span.record_exception(exc)
                self.errors.add(1, {"worlds.method": name, "error.type": outcome})
                raise
            finally:
                if name == "events.create":
                    labels = {"worlds.event_type": attributes.get("worlds.event_type", ""), "worlds.outcome": outcome}
                    self.create_duration.record(time.perf_counter() - started, labels)
            span.set_attribute("worlds.outcome", outcome)
            return result

    def handler(self, handler: Callable[[Any, MessageMeta], Awaitable[Reschedule | None]]) -> Any:
        @functools.wraps(handler)
        async def handle(message: Any, meta: MessageMeta) -> Reschedule | None:
            labels = {"worlds.queue_name": meta.queue_name}
            self.attempts.record(meta.attempt, labels)
            try:
                latency = (datetime.now(UTC) - parse_ulid_time(meta.message_id)).total_seconds()
                self.delivery_latency.record(max(0.0, latency), labels)
            except ValidationError:  # a World whose message ids are not ULIDs: no latency to report
                pass
            result: Reschedule | None = await self.call("queue.handle", handler, (message, meta), {})
            return result

        return handle


def _attributes(name: str, args: Any, kwargs: Any) -> dict[str, Any]:
    """What a rule is about: the run, the event type, the queue, the stream."""
    attributes: dict[str, Any] = {"worlds.method": name}
    if name == "events.create":
        run_id, request = [*args, None, None][:2]
        if run_id is not None:
            attributes["worlds.run_id"] = str(run_id)
        if request is not None:
            attributes["worlds.event_type"] = str(getattr(request, "event_type", ""))
            if getattr(request, "correlation_id", None) is not None:
                attributes["worlds.correlation_id"] = str(request.correlation_id)
    elif name == "queue" and args:
        attributes["worlds.queue_name"] = str(args[0])
    elif name == "queue.handle" and len(args) > 1:
        meta = args[1]
        attributes.update(
            {"worlds.queue_name": meta.queue_name, "worlds.message_id": meta.message_id, "worlds.attempt": meta.attempt}
        )
    elif name.startswith("runs.") and args:
        attributes["worlds.run_id"] = str(args[0])
    elif name in ("write_to_stream", "write_to_stream_many", "close_stream", "get_stream_info") and len(args) > 1:
        attributes.update({"worlds.stream": str(args[0]), "worlds.run_id": str(args[1])})
    return attributes


class _Proxy:
    """Forwards attributes; ``async`` methods go through :meth:`_Telemetry.call`.

    The wrapped methods are set on the instance, not served by ``__getattr__``
    alone: ``isinstance`` against a runtime-checkable protocol looks attributes up
    statically on Python 3.12+, and must still see an optional surface
    (``BatchStreamer``, ``InspectableWorld``) exactly when the World has it.
    """

    def __init__(self, inner: Any, telemetry: _Telemetry, prefix: str) -> None:
        self._inner = inner
        for name in dir(type(inner)):
            if not name.startswith("_") and inspect.iscoroutinefunction(getattr(type(inner), name, None)):
                setattr(self, name, _traced(telemetry, f"{prefix}{name}", getattr(inner, name)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _traced(telemetry: _Telemetry, label: str, method: Callable[..., Awaitable[Any]]) -> Any:
    @functools.wraps(method)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        return await telemetry.call(label, method, args, kwargs)

    return traced


class InstrumentedWorld(_Proxy):
    """A World seen through :func:`instrument`; everything not wrapped is the World's own."""

    def __init__(self, world: Any, telemetry: _Telemetry) -> None:
        super().__init__(world, telemetry, "")
        self._telemetry = telemetry
        self.spec_version = world.spec_version
        for name in GROUPS:
            setattr(self, name, _Proxy(getattr(world, name), telemetry, f"{name}."))
        self.read_from_stream = world.read_from_stream

    def register_handler(self, prefix: str, handler: Any) -> None:
        self._inner.register_handler(prefix, self._telemetry.handler(handler))

    def __repr__(self) -> str:
        return f"instrument({self._inner!r})"
