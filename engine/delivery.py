"""Outbound actions: claim due deliveries, call the channel (signed), settle the outcome.

A delivery's id is the `webhook-id` of every attempt, so a retry is never a second effect at
a channel that dedupes. Claims are leases in SQL: a worker that dies mid-call leaves its
deliveries to be claimed again when the lease ends. Consent, channel state and the channel's
circuit breaker are checked at send time; every suppression and failure keeps its reason.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import tenacity
import urllib3
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from engine import batch, counters, execution, outbound, transaction
from engine.breaker import Breaker, BreakerOpen, Gate
from engine.counters import Metric
from engine.crypto import SecretBox
from engine.language.nodes import Resume
from engine.models import Channel, Customer, Delivery, DeliveryStatus, Run, RunStatus
from engine.profiles import identity
from engine.settings import Settings

log = logging.getLogger("throughline.delivery")
LEASE = timedelta(seconds=60)
WEBHOOKS = 0  # the drain partition of webhook-node calls (they have no channel)
# Reasons a delivery did not happen; the channel ones let the node's fallback channel try.
CONSENT, DISABLED, NO_URL, BREAKER, PERMANENT, EXHAUSTED, BLOCKED = (
    "consent_withdrawn", "channel_disabled", "no_outbound_url", "breaker_open",
    "permanent_4xx", "retries_exhausted", "blocked_address",
)  # fmt: skip
CHANNEL_REASONS = {DISABLED, NO_URL, BREAKER, PERMANENT, EXHAUSTED, BLOCKED}
TEST = "test"  # the kind of a delivery an admin sends to try a channel
_backoff = tenacity.wait_random_exponential(multiplier=1, max=300)


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one attempt, with what the attempt needs to know."""

    id: str
    kind: str
    attempts: int
    body: dict[str, Any]
    headers: dict[str, str]
    url: str | None
    channel_id: int | None
    channel_slug: str | None
    channel_enabled: bool
    secret: str | None
    consent: bool
    deadline_at: datetime | None


@dataclass(frozen=True)
class Outcome:
    """delivered, retry, postpone (breaker open: not an attempt), failed or suppressed."""

    status: str
    reason: str | None = None
    response_status: int | None = None
    latency_ms: int | None = None
    error: str | None = None


def retry_delay(attempt: int) -> float:
    """Full-jitter exponential backoff: a random wait up to 2**attempt seconds (5 min cap)."""
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return float(_backoff(state))


def claim(
    session: Session, partition: int, box: SecretBox, now: datetime, limit: int = 50
) -> list[Claimed]:
    """Lease up to `limit` due deliveries of a channel (or of webhook calls, partition 0)."""
    statement = select(Delivery).where(
        Delivery.status == DeliveryStatus.pending, Delivery.next_attempt_at <= now
    )
    statement = (
        statement.where(Delivery.kind == "webhook")
        if partition == WEBHOOKS
        else statement.where(Delivery.channel_id == partition)
    )
    statement = statement.order_by(Delivery.next_attempt_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    rows = list(session.scalars(statement))
    channel = session.get(Channel, partition) if partition != WEBHOOKS else None
    secret = box.decrypt(channel.outbound_secret) if channel else None
    consents: dict[int, dict[str, Any]] = {}
    if channel is not None:
        wanted = {row.customer_id for row in rows if row.customer_id is not None}
        if wanted:
            consents = {
                customer_id: consent
                for customer_id, consent in session.execute(
                    select(Customer.id, Customer.consent).where(Customer.id.in_(wanted))
                )
            }
    claimed = []
    for row in rows:
        row.next_attempt_at = now + LEASE
        row.attempts += 1
        consent = True
        if channel is not None and row.customer_id is not None:
            consent = bool(
                (consents.get(row.customer_id) or {}).get(channel.slug, True)
            )
        body = {"delivery_id": row.id, **row.payload.get("body", {})}
        claimed.append(
            Claimed(
                id=row.id,
                kind=row.kind,
                attempts=row.attempts,
                body=body,
                headers=dict(row.payload.get("headers") or {}),
                url=row.url
                if row.kind == "webhook"
                else (channel.outbound_url if channel else None),
                channel_id=channel.id if channel else None,
                channel_slug=channel.slug if channel else None,
                channel_enabled=channel.enabled if channel else True,
                secret=secret,
                consent=consent,
                deadline_at=row.deadline_at,
            )
        )
    return claimed


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
            urllib3.Timeout(
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
    ) -> urllib3.BaseHTTPResponse:
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
        response = self.client.post(target, address, data.encode(), headers)
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
        except (urllib3.exceptions.HTTPError, OSError) as error:
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


def new_test_delivery(channel: Channel, now: datetime) -> Delivery:
    """A signed test action for `channel`, tried once by the channel's normal drain.

    Its deadline is its creation time, so a failure is final at the first attempt instead
    of being retried for a day.
    """
    return Delivery(
        channel_id=channel.id,
        kind=TEST,
        payload={
            "body": {
                "test": True,
                "journey": None,
                "node": None,
                "customer": None,
                "message": {"text": "A test action from Throughline; ignore it."},
                "context": {},
            },
            "channel": channel.slug,
        },
        next_attempt_at=now,
        deadline_at=now,
        created_at=now,
    )


class _Retryable(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def load(session: Session, ids: list[str]) -> None:
    """Read a claimed batch's rows in one query, so settling each finds it in the session,
    and the journey versions of their runs, which their figures are counted under."""
    statement = select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id)
    if session.get_bind().dialect.name == "postgresql":
        # Two drains holding an expired lease on the same row settle it one after the
        # other; the second then finds it settled and leaves it.
        statement = statement.with_for_update()
    rows = list(session.scalars(statement))
    state = transaction.of(session)
    versions = state.run_versions
    # The runs these deliveries hold, locked in id order, with their customers: settling
    # each delivery then resumes its run without a query of its own.
    held = sorted({r.run_id for r in rows if r.holds_run and r.run_id is not None})
    found: list[Run] = []
    if held:
        runs = select(Run).where(Run.id.in_(held)).order_by(Run.id)
        if session.get_bind().dialect.name == "postgresql":
            runs = runs.with_for_update()
        found = list(session.scalars(runs))
        batch.customers_of(session, (run.customer_id for run in found))
        state.held_runs.update(run.id for run in found)
        versions.update((run.id, run.version_id) for run in found)
    others = {r.run_id for r in rows if r.run_id is not None} - set(versions)
    if others:
        for run_id, version_id in session.execute(
            select(Run.id, Run.version_id).where(Run.id.in_(others))
        ):
            versions[run_id] = version_id
    # The session holds its objects weakly: keep the batch's until it commits, or settling
    # each would read its row (and flush everything before) again.
    state.loaded_deliveries = (rows, found)


def _count(session: Session, row: Delivery, outcome: Outcome, now: datetime) -> None:
    """Count an attempt's latency and, once final, the delivery's status and reason."""
    versions = transaction.of(session).run_versions
    where: dict[str, Any] = {
        "journey_id": row.journey_id or 0,
        "version_id": versions.get(row.run_id or 0, 0),
        "node_id": row.node_id or "",
        "channel_id": row.channel_id or 0,
    }
    if outcome.latency_ms is not None:
        label = counters.bucket_label(outcome.latency_ms, counters.LATENCY_BOUNDS_MS)
        counters.add(session, Metric.LATENCY, now, label=label, **where)
    if outcome.status in ("retry", "postpone"):
        return
    counters.add(session, Metric.DELIVERY, now, label=outcome.status, **where)
    if outcome.status != "delivered":
        counters.add(
            session, Metric.REASON, now, label=outcome.reason or "failed", **where
        )


def settle(
    session: Session,
    item: Claimed,
    outcome: Outcome,
    now: datetime,
    breaker_reset: float,
    effects: execution.Effects,
) -> None:
    """Record an attempt's outcome; fall back or resume the waiting run when it is final."""
    row = session.get(Delivery, item.id)
    if row is None or row.status is not DeliveryStatus.pending:
        return  # erased meanwhile, or settled by an earlier lease holder
    row.response_status, row.latency_ms = outcome.response_status, outcome.latency_ms
    row.last_error = outcome.error
    _count(session, row, outcome, now)
    if outcome.status == "retry":
        row.next_attempt_at = now + timedelta(seconds=retry_delay(row.attempts))
        return
    if outcome.status == "postpone":
        row.attempts -= 1  # the channel was not called
        row.next_attempt_at = now + timedelta(seconds=breaker_reset)
        return
    row.status = DeliveryStatus(outcome.status)
    row.reason, row.finished_at, row.next_attempt_at = outcome.reason, now, None
    if row.status is DeliveryStatus.delivered:
        _resume_run(session, row, True, "delivered", effects, now)
        return
    fallback = row.payload.get("fallback_channel")
    if fallback and row.fallback_of_id is None and outcome.reason in CHANNEL_REASONS:
        channel = session.scalar(select(Channel).where(Channel.slug == fallback))
        if channel is not None:
            payload = {**row.payload, "channel": fallback, "fallback_channel": None}
            session.add(
                Delivery(
                    run_id=row.run_id,
                    customer_id=row.customer_id,
                    journey_id=row.journey_id,
                    node_id=row.node_id,
                    channel_id=channel.id,
                    kind="send",
                    holds_run=row.holds_run,
                    fallback_of_id=row.id,
                    payload=payload,
                    next_attempt_at=now,
                    deadline_at=row.deadline_at,
                    created_at=now,
                )
            )
            effects.delivery_channels.add(channel.id)
            return
    _resume_run(session, row, False, outcome.reason or "failed", effects, now)


def _resume_run(
    session: Session,
    row: Delivery,
    ok: bool,
    reason: str,
    effects: execution.Effects,
    now: datetime,
) -> None:
    if not row.holds_run or row.run_id is None:
        return
    run: Run | None
    if row.run_id in transaction.of(session).held_runs:
        run = session.get(Run, row.run_id)  # read and locked by load()
    else:
        query = select(Run).where(Run.id == row.run_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        run = session.scalar(query)
    if (
        run is None
        or run.status is not RunStatus.waiting
        or not run.state.get("holding_delivery")
    ):
        return
    customer = session.get(Customer, run.customer_id)
    if customer is None:
        return
    scope = identity.scope_of(session, customer)
    execution.resume_run(
        session,
        run,
        Resume("delivery", {"ok": ok, "reason": reason}),
        scope,
        effects,
        now,
    )
    if scope["traits"] != customer.traits:
        customer.traits = scope["traits"]
