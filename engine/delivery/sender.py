"""Making one attempt: signing, the guarded connection, and what the answer means."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from functools import partial

from opentelemetry.trace import SpanKind
from redis import Redis
from standardwebhooks.webhooks import Webhook

from engine import outbound, tracing
from engine.delivery import (
    BLOCKED,
    BREAKER,
    CONSENT,
    DISABLED,
    EXHAUSTED,
    NO_URL,
    PERMANENT,
    Claimed,
    Outcome,
    log,
)
from engine.delivery.breaker import Breaker, BreakerOpen, Gate
from engine.settings import Settings


class Sender:
    """One worker's HTTP client (pooled keep-alive connections) and per-channel breakers."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        resolver: outbound.Resolver | None = None,
    ) -> None:
        self.settings, self.redis = settings, redis
        # Shared by the worker's delivery threads. No retries or redirects of its own:
        # retries are scheduled in SQL, and a redirect is an answer like any other.
        self.client = outbound.Client(
            outbound.Timeout(
                connect=min(3.0, settings.delivery_timeout),
                read=settings.delivery_timeout,
            ),
            resolver,
        )
        networks = settings.outbound_allowed_networks
        self.channel_policy = outbound.Policy(networks)
        self.webhook_policy = outbound.Policy(networks, settings.webhook_allowed_hosts)
        self.breakers: dict[int, Breaker] = {}

    def close(self) -> None:
        self.client.close()

    def breaker(self, channel_id: int) -> Breaker:
        found = self.breakers.get(channel_id)
        if found is None:
            found = Breaker(
                self.redis,
                channel_id,
                self.settings.breaker_fail_max,
                self.settings.breaker_reset_seconds,
            )
            self.breakers[channel_id] = found
        return found

    def gates(self, items: list[Claimed]) -> dict[int, Gate]:
        """The breakers of a batch's channels, each read once."""
        ids = {item.channel_id for item in items if item.channel_id is not None}
        return {channel_id: Gate(self.breaker(channel_id)) for channel_id in ids}

    def _post(
        self, item: Claimed, target: outbound.Target, address: outbound.IPAddress
    ) -> outbound.Answer:
        data = json.dumps(item.body, separators=(",", ":"), sort_keys=True)
        headers = {
            "content-type": "application/json",
            "user-agent": "Throughline",
            **item.headers,
            "webhook-id": item.id,
        }
        if item.secret:
            now = datetime.now(UTC)
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = Webhook(item.secret).sign(item.id, now, data)
        with tracing.span(
            "delivery",
            item.traceparent,
            SpanKind.CLIENT,
            {"throughline.delivery_id": item.id, "throughline.attempt": item.attempts},
        ) as span:
            if item.traceparent:
                # ours, whatever spelling a webhook step's own headers used
                for name in [k for k in headers if k.lower() == tracing.HEADER]:
                    del headers[name]
                headers[tracing.HEADER] = tracing.passed_on(span, item.traceparent)
            response = self.client.post(target, address, data.encode(), headers)
            if span is not None:
                span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500 or response.status in (408, 429):
            raise _Retryable(response.status)
        return response

    def attempt(
        self, item: Claimed, now: datetime, gates: dict[int, Gate] | None = None
    ) -> Outcome:
        if item.channel_id is not None:
            if not item.channel_enabled:
                return Outcome("suppressed", DISABLED)
            if not item.consent:
                return Outcome("suppressed", CONSENT)
            if not item.url:
                return Outcome("suppressed", NO_URL)
        policy = self.webhook_policy if item.channel_id is None else self.channel_policy
        try:
            # Resolved once: the call goes to the address checked here, whatever DNS
            # answers next.
            target, address = self.client.check(str(item.url), policy)
        except outbound.Unresolvable as error:
            log.warning("delivery %s: %s", item.id, error)
            return self._later(
                item, now, "retry", EXHAUSTED, outbound.COULD_NOT_CONNECT
            )
        except outbound.AddressError as error:
            log.warning("delivery %s refused: %s", item.id, error)
            return Outcome("failed", BLOCKED, error=_refusal(item.url))
        started = time.perf_counter()
        try:
            if item.channel_id is not None:
                gate = (gates or {}).get(item.channel_id) or Gate(
                    self.breaker(item.channel_id)
                )
                response = gate.call(partial(self._post, item, target, address))
            else:
                response = self._post(item, target, address)
        except BreakerOpen:
            return self._later(
                item, now, "postpone", BREAKER, "the channel's circuit breaker is open"
            )
        except _Retryable as error:
            return self._later(
                item,
                now,
                "retry",
                EXHAUSTED,
                f"HTTP {error.status}",
                error.status,
                started,
            )
        except (outbound.BrokenAnswer, OSError) as error:
            # What failed (refused, reset, TLS, timeout, at which address and port) is
            # for the log: told to those who wrote the URL, it would map private ports.
            log.warning(
                "delivery %s to %s (%s) could not connect: %s: %s",
                item.id,
                target.host_header,
                address,
                type(error).__name__,
                error,
            )
            return self._later(
                item, now, "retry", EXHAUSTED, outbound.COULD_NOT_CONNECT, None, started
            )
        except ValueError as error:
            # A header the HTTP client refuses to send.
            return self._later(
                item,
                now,
                "retry",
                EXHAUSTED,
                f"{type(error).__name__}: {error}",
                None,
                started,
            )
        latency = int((time.perf_counter() - started) * 1000)
        if 200 <= response.status < 300:
            return Outcome(
                "delivered", response_status=response.status, latency_ms=latency
            )
        return Outcome(
            "failed",
            PERMANENT,
            response.status,
            latency,
            f"HTTP {response.status}",
        )

    def _later(
        self,
        item: Claimed,
        now: datetime,
        kind: str,
        reason: str,
        error: str,
        status: int | None = None,
        started: float | None = None,
    ) -> Outcome:
        latency = int((time.perf_counter() - started) * 1000) if started else None
        past_deadline = item.deadline_at is not None and now >= item.deadline_at
        if past_deadline or (
            kind == "retry" and item.attempts >= self.settings.delivery_max_attempts
        ):
            return Outcome("failed", reason, status, latency, error)
        return Outcome(kind, None, status, latency, error)


def _refusal(url: str | None) -> str:
    """Why a call was not made, in words that name no resolved address."""
    try:
        host = outbound.read_url(str(url)).host
    except outbound.AddressError:
        return "refused: the URL has no valid host"
    return f"refused: {host} is not a public address"


class _Retryable(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
