"""Inbound webhooks: verify the signature, read the events, hand them to intake, answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from flask import Response, g, jsonify, request
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.exceptions import HTTPException, InternalServerError

from engine import schemas, tracing
from engine.analytics import channel_health
from engine.intake import admission, payload
from engine.intake.commit import GROUP_FAILURES, Taken
from engine.intake.contract import EventError, IncomingEvent, parse_event
from engine.intake.store import ToStore, known_events
from engine.models import utcnow
from engine.schemas import store as schema_store
from webapp.channels.example import TOLERANCE_MINUTES
from webapp.errors import json_error
from webapp.hooks import bp
from webapp.hooks.channels import IntakeChannel, intake_channel
from webapp.security import signed
from webapp.services import Services, services

log = logging.getLogger("throughline.web")

MAX_BODY = 256 * 1024
MAX_BATCH_BODY = 4 * 1024 * 1024
MAX_BATCH = 1000
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
TOLERANCE = timedelta(minutes=TOLERANCE_MINUTES)


class Refusal(Exception):
    """An answer other than 202, with its status, a sentence and the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.field, self.retry_after = (
            status,
            code,
            field,
            retry_after,
        )
        self.extra = extra


@dataclass(frozen=True)
class Answer:
    """An intake answer before it is a response: its status, JSON body and own headers."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Inbound:
    """What intake reads of a request: its Content-Length (None: not given), its body
    (read once, when asked) and its headers by name."""

    content_length: int | None
    read: Callable[[], bytes]
    header: Callable[[str], str | None]


def refusal_answer(found: Services, slug: str | None, refusal: Refusal) -> Answer:
    """The answer to a refused request, counted for the channel's health figures."""
    body: dict[str, Any] = {"code": refusal.code, "message": str(refusal)}
    if refusal.field:
        body["field"] = refusal.field
    _count(found, slug, refusal)
    return Answer(
        refusal.status,
        {"error": body, **refusal.extra},
        (("Retry-After", str(refusal.retry_after)),) if refusal.retry_after else (),
    )


def _response(answer: Answer) -> Response:
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.headers.extend(answer.headers)
    return response


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal) -> Response:
    slug = (request.view_args or {}).get("slug")
    return _response(refusal_answer(services(), slug, refusal))


def _count(found: Services, slug: str | None, refusal: Refusal) -> None:
    """Count a known channel's refused request for its health figures (best effort)."""
    if not slug or refusal.code == "unknown_channel":
        return
    try:
        channel_health.record_rejection(
            found.redis,
            slug,
            refusal.status,
            refusal.code,
            str(refusal),
            utcnow(),
            refusal.field,
        )
    except RedisError:
        pass  # the channel's answer matters more than the count


def _channel(found: Services, slug: str) -> IntakeChannel:
    try:
        channel = intake_channel(found, slug)
    except SQLAlchemyError as error:
        log.warning("channel %r could not be read: %s", slug, type(error).__name__)
        raise _unavailable() from None
    if channel is None:
        raise Refusal(404, "unknown_channel", f"there is no channel {slug!r}")
    if not channel.enabled:
        raise Refusal(409, "channel_disabled", f"the channel {slug!r} is disabled")
    return channel


def _inbound(cache: bool = False) -> Inbound:
    """This Flask request as intake reads it; `cache` keeps the body readable for the view."""
    return Inbound(
        request.content_length,
        lambda: request.get_data(cache=cache),
        request.headers.get,
    )


def _signed_text(
    channel: IntakeChannel, inbound: Inbound, limit: int
) -> tuple[str, str]:
    """(webhook id, body text) of a correctly signed, fresh request of at most `limit`
    bytes."""
    if (inbound.content_length or 0) > limit:
        raise Refusal(413, "payload_too_large", f"the body is over {limit // 1024} KiB")
    data = inbound.read()
    if len(data) > limit:
        raise Refusal(413, "payload_too_large", f"the body is over {limit // 1024} KiB")
    headers = {name: inbound.header(name) or "" for name in HEADERS}
    missing = [name for name in HEADERS if not headers[name]]
    if missing:
        raise Refusal(
            400,
            "missing_headers",
            f"sign the request per Standard Webhooks; missing {', '.join(missing)}",
            missing[0],
        )
    if len(headers["webhook-id"]) > 255:
        raise Refusal(
            400, "bad_header", "webhook-id is longer than 255 characters", "webhook-id"
        )
    if "\x00" in headers["webhook-id"]:
        raise Refusal(
            400, "bad_header", "webhook-id holds a NUL character", "webhook-id"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "bad_body", "the body is not UTF-8 text") from None
    _verify(channel, text, headers)
    return headers["webhook-id"], text


def _verified_body(
    channel: IntakeChannel, inbound: Inbound, limit: int
) -> tuple[str, Any]:
    """(webhook id, parsed JSON) of a correctly signed, fresh request.

    What storage would refuse is left in place for `payload.check` (see engine.intake.payload).
    """
    webhook_id, text = _signed_text(channel, inbound, limit)
    try:
        return webhook_id, payload.parse(text)
    except json.JSONDecodeError as error:
        raise Refusal(
            400,
            "bad_json",
            f"the body is not JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    except payload.PayloadError as error:
        raise Refusal(400, "bad_json", str(error), error.field) from None


def verify_request(slug: str, limit: int = MAX_BODY) -> IntakeChannel:
    """The enabled channel `slug` whose inbound secret signed this request, once: its
    webhook-id is remembered for the signature's tolerance, so a captured request cannot
    be sent again (Refusal). The body stays readable for the view."""
    channel = _channel(services(), slug)
    webhook_id, _text = _signed_text(channel, _inbound(cache=True), limit)
    try:
        first = services().redis.set(
            f"signed:{channel.id}:{webhook_id}",
            1,
            nx=True,
            ex=int(TOLERANCE.total_seconds()) * 2,
        )
    except RedisError:
        raise _unavailable() from None
    if not first:
        raise Refusal(
            409,
            "replayed",
            "this webhook-id was used already; sign each request with a new one",
            "webhook-id",
        )
    return channel


def _meet_schema(
    found: Services, channel: IntakeChannel, item: ToStore
) -> tuple[ToStore, schemas.Checked | None]:
    """The event as its schema lets it be stored (unnamed properties stripped in strip
    mode), and what the schema made of it (None: no schema applies)."""
    schema = schema_store.for_event_in(found.database, item.parsed.type, channel.slug)
    if schema is None:
        return item, None
    checked = schemas.check(schema, item.parsed.properties)
    if checked.stripped:
        body = {**item.body, "properties": checked.properties}
        item = replace(
            item, body=body, parsed=replace(item.parsed, properties=checked.properties)
        )
    return item, checked


def _quarantine(
    found: Services,
    channel: IntakeChannel,
    refused: list[tuple[ToStore, schemas.Checked]],
) -> dict[str, int]:
    """Keep refused events to be replayed, nothing the channel sent being lost; they count
    against the channel's rate like any event (429 past it). Returns the events among them
    stored before (a retry of an event taken before its schema): webhook id -> event id."""
    if not refused:
        return {}
    now = utcnow()
    with found.database.session(writer=True) as session:
        ids = [item.webhook_id for item, _checked in refused]
        before = known_events(session.connection(), channel.id, ids)
        kept = [(i, c) for i, c in refused if i.webhook_id not in before]
        if kept:
            try:
                verdict = admission.admit(  # no backlog bound: nothing will be applied
                    found.redis, channel.id, len(kept), channel.rate_limit, 2**62
                )
            except RedisError:
                raise _unavailable() from None
            if verdict == admission.OVER_RATE:
                _refuse(verdict, channel)
        for item, checked in kept:
            schema_store.quarantine(
                session,
                channel.id,
                item.webhook_id,
                item.parsed.type,
                item.body,
                checked.problems,
                now,
            )
        session.commit()
    return before


def _flag(
    found: Services,
    channel: IntakeChannel,
    taken: list[tuple[int, ToStore, schemas.Checked]],
) -> None:
    """Mark taken events that broke their schema, and count those stripped."""
    flags = [
        schema_store.Flag(event_id, item.webhook_id, item.parsed.type, checked.problems)
        for event_id, item, checked in taken
        if checked.problems
    ]
    stripped = [item.parsed.type for _id, item, checked in taken if checked.stripped]
    if not (flags or stripped):
        return
    now = utcnow()
    try:
        with found.database.session(writer=True) as session:
            schema_store.flag(session, channel.id, flags, now)
            for event_type in stripped:
                schema_store.count_stripped(session, channel.id, event_type, now)
            session.commit()
    except SQLAlchemyError as error:  # the events are stored; only their marks are lost
        log.warning(
            "could not flag events breaking their schema: %s", type(error).__name__
        )


def _event(found: Services, body: Any, prefix: str = "") -> IncomingEvent:
    """An event that can be stored as it is, or EventError / PayloadError saying why not."""
    payload.check(body, prefix.rstrip("."))
    return parse_event(body, prefix, found.settings.earliest_occurred_at)


def _verify(channel: IntakeChannel, text: str, headers: dict[str, str]) -> None:
    """Accept a signature by the channel's secret (or the previous one, in its grace period)."""
    _check_timestamp(headers["webhook-timestamp"], datetime.now(UTC))
    # The timestamp is fresh, so the library's own check of it passes and a verification
    # error means the signature does not match. (One a hair inside the tolerance here and
    # outside it a moment later in the library is answered as a bad signature: 401 too.)
    for secret in channel.secrets:
        try:
            Webhook(secret).verify(text, headers, json_parse=False)
        except WebhookVerificationError:
            continue
        return
    raise Refusal(
        401,
        "bad_signature",
        "the signature does not match the body with this channel's secret",
        "webhook-signature",
    )


def _check_timestamp(header: str, now: datetime) -> None:
    """Refuse a webhook-timestamp that is not a Unix time or is past the tolerance.

    Read as the Standard Webhooks library reads it, so its check of the same header passes.
    """
    try:
        sent = datetime.fromtimestamp(float(header), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise Refusal(
            400,
            "bad_header",
            "webhook-timestamp must be a Unix time in seconds",
            "webhook-timestamp",
        ) from None
    if now - TOLERANCE <= sent <= now + TOLERANCE:
        return
    raise Refusal(
        401,
        "stale_signature",
        f"message timestamp too {'old' if sent < now else 'new'}: "
        f"the tolerance is {TOLERANCE_MINUTES} minutes",
        "webhook-timestamp",
    )


def _refuse(verdict: int, channel: IntakeChannel) -> None:
    if verdict == admission.OVER_RATE:
        raise Refusal(
            429,
            "rate_limited",
            f"over the channel's rate of {channel.rate_limit} events per second",
            retry_after=1,
        )
    if verdict == admission.OVER_BACKLOG:
        raise Refusal(
            429,
            "overloaded",
            "too many events are waiting to be applied; retry shortly",
            retry_after=5,
        )


def _unavailable() -> Refusal:
    return Refusal(
        503,
        "unavailable",
        "events cannot be taken in right now; retry shortly",
        retry_after=5,
    )


def _take(found: Services, channel: IntakeChannel, items: list[ToStore]) -> Taken:
    """Admit and store the request's events; refused whole, or each one's outcome."""
    try:
        taken = found.intake.take(channel.id, channel.rate_limit, items)
    except GROUP_FAILURES:
        # Nothing answered in time or a service is down: the channel retries with the same
        # webhook-id, which is answered as the first time if it was stored after all.
        raise _unavailable() from None
    _refuse(taken.verdict, channel)
    return taken


@contextmanager
def intake_trace(slug: str, header: str | None) -> Iterator[str]:
    """The traceparent of a request to `slug` while it is taken in: a span in the trace its
    `traceparent` header names, or in a new trace."""
    inbound = tracing.valid(header)
    with tracing.span(
        "intake", inbound, SpanKind.SERVER, {"throughline.channel": slug}
    ) as span:
        yield tracing.traceparent_of(span) if span else inbound or tracing.new()


def traced(view: Any) -> Any:
    """Run an intake view in the trace its request names (`traceparent`) or a new one; the
    events it stores carry it (`g.traceparent`), and with them what they cause."""

    @wraps(view)
    def within(*args: Any, **kwargs: Any) -> Any:
        with intake_trace(
            kwargs.get("slug", ""), request.headers.get(tracing.HEADER)
        ) as traceparent:
            g.traceparent = traceparent
            return view(*args, **kwargs)

    return within


@bp.post("/<slug>")
@signed
@traced
def receive(slug: str) -> Any:
    """One signed event: 202 once stored durably. (webapp.hooks.direct answers these
    requests before Flask; this view answers those it leaves, with the same answers.)"""
    return _response(receive_one(services(), slug, _inbound(), g.traceparent))


def receive_one(
    found: Services, slug: str, inbound: Inbound, traceparent: str
) -> Answer:
    """The answer to one signed event sent to `slug`: 202 once stored durably."""
    try:
        return _receive_one(found, slug, inbound, traceparent)
    except Refusal as refusal:
        tracing.failed(refusal)
        return refusal_answer(found, slug, refusal)


def _receive_one(
    found: Services, slug: str, inbound: Inbound, traceparent: str
) -> Answer:
    channel = _channel(found, slug)
    webhook_id, body = _verified_body(channel, inbound, MAX_BODY)
    try:
        parsed = _event(found, body)
    except (EventError, payload.PayloadError) as error:
        raise Refusal(400, "invalid_event", str(error), error.field) from None
    item, checked = _meet_schema(
        found, channel, ToStore(webhook_id, body, parsed, traceparent)
    )
    if checked is not None and checked.refused:
        stored_before = _quarantine(found, channel, [(item, checked)])
        if webhook_id in stored_before:  # a retry of an event taken before the schema
            return _accepted(stored_before[webhook_id], duplicate=True)
        raise Refusal(
            400,
            "schema_violation",
            _breaks(parsed.type, checked) + "; it is kept for 7 days to be replayed "
            "once fixed",
            schemas.dotted(checked.problems[0].pointer),
            problems=[p.as_dict() for p in checked.problems],
        )
    (stored,) = _take(found, channel, [item]).stored
    if stored is None:
        # The database refused it (logged by intake): a plain server error.
        return SERVER_ERROR
    if checked is not None and not stored.duplicate:
        _flag(found, channel, [(stored.event_id, item, checked)])
    return _accepted(stored.event_id, stored.duplicate)


def http_error(error: HTTPException) -> Answer:
    """What webapp.errors answers a JSON client for an HTTP error (a client gone mid-body)."""
    status = error.code or 500
    return Answer(status, json_error(status, error.description or error.name))


# What webapp.errors answers a JSON client for an unexpected failure.
SERVER_ERROR = http_error(InternalServerError())


def _accepted(event_id: int, duplicate: bool) -> Answer:
    return Answer(
        202,
        {"event_id": event_id},
        (("Idempotent-Replayed", "true"),) if duplicate else (),
    )


def _breaks(event_type: str, checked: schemas.Checked) -> str:
    """Why an event is refused, naming fields only: the answer's words are kept with the
    channel's health figures, which hold no value a channel sent (`problems` has them)."""
    return f"the event breaks the schema of {event_type} at {schemas.where(checked.problems)}"


@bp.post("/<slug>/batch")
@signed
@traced
def receive_batch(slug: str) -> Any:
    """Up to 1,000 events under one signature, each with its own id; answered per event."""
    found = services()
    channel = _channel(found, slug)
    _webhook_id, body = _verified_body(channel, _inbound(), MAX_BATCH_BODY)
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or not events:
        raise Refusal(
            400,
            "invalid_batch",
            'send {"events": [...]} with at least one event',
            "events",
        )
    if len(events) > MAX_BATCH:
        raise Refusal(
            413,
            "batch_too_large",
            f"a batch holds at most {MAX_BATCH} events",
            "events",
        )
    results: list[dict[str, Any]] = []
    accepted: list[tuple[int, ToStore]] = []
    refused: list[tuple[ToStore, schemas.Checked]] = []
    refused_at: dict[str, int] = {}
    checks: dict[int, schemas.Checked | None] = {}
    seen: set[str] = set()
    for index, item in enumerate(events):
        event_id = item.get("id") if isinstance(item, dict) else None
        where = f"events[{index}]"
        if (
            not isinstance(event_id, str)
            or not event_id
            or len(event_id) > 255
            or payload.scrub(event_id) != event_id
        ):
            results.append(
                {
                    "id": payload.scrubbed(event_id),
                    "status": 400,
                    "error": {
                        "field": f"{where}.id",
                        "message": "each event needs an id (text, at most 255 characters): its idempotency key",
                    },
                }
            )
            continue
        if event_id in seen:
            results.append(
                {
                    "id": event_id,
                    "status": 400,
                    "error": {
                        "field": f"{where}.id",
                        "message": "this id appears twice in the batch",
                    },
                }
            )
            continue
        seen.add(event_id)
        try:
            payload.check(item, where)
            content = {k: v for k, v in item.items() if k != "id"}
            to_store, checked = _meet_schema(
                found,
                channel,
                ToStore(
                    event_id,
                    content,
                    _event(found, content, f"{where}."),
                    g.traceparent,
                ),
            )
            if checked is not None and checked.refused:
                refused.append((to_store, checked))
                refused_at[event_id] = len(results)
                results.append(
                    {
                        "id": event_id,
                        "status": 400,
                        "error": {
                            "code": "schema_violation",
                            "field": f"{where}."
                            + schemas.dotted(checked.problems[0].pointer),
                            "message": _breaks(to_store.parsed.type, checked),
                        },
                        "problems": [p.as_dict() for p in checked.problems],
                    }
                )
                continue
            accepted.append((index, to_store))
            checks[index] = checked
            results.append({"id": event_id, "status": 202})
        except (EventError, payload.PayloadError) as error:
            results.append(
                {
                    "id": event_id,
                    "status": 400,
                    "error": {"field": error.field, "message": str(error)},
                }
            )
    if accepted:
        taken = _take(found, channel, [item for _, item in accepted])
        for (index, _item), stored in zip(accepted, taken.stored, strict=True):
            if stored is None:
                results[index] = {
                    "id": results[index]["id"],
                    "status": 500,
                    "error": {
                        "field": f"events[{index}]",
                        "message": "this event could not be stored; send it again",
                    },
                }
                continue
            results[index].update(
                event_id=stored.event_id,
                **({"duplicate": True} if stored.duplicate else {}),
            )
        _flag(
            found,
            channel,
            [
                (stored.event_id, item, checked)
                for (index, item), stored in zip(accepted, taken.stored, strict=True)
                if stored is not None
                and not stored.duplicate
                and (checked := checks.get(index)) is not None
            ],
        )
    for event_id, earlier in _quarantine(found, channel, refused).items():
        # A retry of an event taken before the schema came: answered as taken.
        results[refused_at[event_id]] = {
            "id": event_id,
            "status": 202,
            "event_id": earlier,
            "duplicate": True,
        }
    return jsonify(
        results=results,
        accepted=sum(1 for result in results if result["status"] == 202),
        rejected=sum(1 for result in results if result["status"] != 202),
    )
