"""Decision tables over the API, and decisions asked in real time by channels."""

from __future__ import annotations

import atexit
import hashlib
import logging
import random
import threading
import time
from collections import Counter as CountedBy
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any

from flask import jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from engine import accounts
from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.decisions import DecisionError, decide, store
from engine.models import DecisionTable, Role, utcnow
from engine.profiles import CustomerError, read
from webapp.api import bp
from webapp.api.errors import ApiError, answer, json_body
from webapp.api.journeys import expected_revision
from webapp.hooks.views import Refusal, verify_request
from webapp.paging import paginate
from webapp.security import acting_user, note_token_use, requires, signed
from webapp.services import db, services

log = logging.getLogger("throughline.web")

# Counter rows decisions asked through the API are added to: several, so that concurrent
# requests seldom wait on one row; apart from the drains' shards.
API_SHARDS = range(900, 916)


@bp.errorhandler(DecisionError)
def _decision_error(error: DecisionError) -> Any:
    db().rollback()
    if error.problems:
        return answer(
            error.status,
            str(error),
            error.field,
            problems=[
                {
                    "node": None,
                    "message": message,
                    **({"field": field} if field else {}),
                }
                for field, message in error.problems
            ],
        )
    return answer(error.status, str(error), error.field)


def describe(row: DecisionTable) -> dict[str, Any]:
    live = store.version(db(), row, row.live_version) if row.live_version else None
    return {
        "key": row.key,
        "name": row.name,
        "draft": row.draft,
        "revision": row.draft_revision,
        "live_version": row.live_version,
        "live": live.document if live else None,
        "updated_at": row.updated_at.isoformat(),
    }


@bp.post("/decisions")
@requires(Role.marketer)
def create_decision() -> Any:
    """Create a decision table from a document (422 naming each problem, 409 if its key
    is taken); it answers nothing until published."""
    row = store.create(db(), json_body(max_keys=None), acting_user())
    db().commit()
    response = jsonify(describe(row))
    response.status_code = 201
    response.headers["Location"] = (
        f"{request.url_root.rstrip('/')}/api/v1/decisions/{row.key}"
    )
    return response


@bp.get("/decisions")
@requires(Role.viewer)
def list_decisions() -> Any:
    page = paginate(db(), select(DecisionTable).order_by(DecisionTable.key))
    items = [
        {
            "key": row.key,
            "name": row.name,
            "live_version": row.live_version,
            "revision": row.draft_revision,
        }
        for row in page.items
    ]
    return jsonify(
        decisions=items, page=page.number, pages=page.pages, total=page.total
    )


@bp.get("/decisions/<key>")
@requires(Role.viewer)
def get_decision(key: str) -> Any:
    return jsonify(describe(store.get(db(), key)))


@bp.put("/decisions/<key>/draft")
@requires(Role.marketer)
def replace_decision_draft(key: str) -> Any:
    """Replace the draft (422 naming each problem); If-Match guards the revision."""
    row = store.get(db(), key)
    store.replace_draft(
        db(), row, json_body(max_keys=None), acting_user(), expected_revision()
    )
    db().commit()
    return jsonify(describe(row))


@bp.post("/decisions/<key>/publish")
@requires(Role.marketer)
def publish_decision(key: str) -> Any:
    """Make the draft the live version (409 naming the live journeys whose decide steps
    have other outcomes)."""
    row = store.get(db(), key)
    store.publish(db(), row, acting_user())
    db().commit()
    store.forget()
    return jsonify(describe(row))


def _caller() -> None:
    """Let a request in by an API token (any role), or signed by a channel's inbound
    secret (`?channel=<slug>`, Standard Webhooks headers as on /hooks)."""
    header = request.headers.get("Authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not _live_token(token.strip()):
            raise _Refused(
                _unauthorized(
                    "send a valid API token as 'Authorization: Bearer <token>'"
                )
            )
        return
    slug = request.args.get("channel", "")
    if not slug:
        raise _Refused(
            _unauthorized(
                "send an API token as 'Authorization: Bearer <token>', or sign the "
                "request as a channel (?channel=<slug> and the webhook-* headers)"
            )
        )
    try:
        verify_request(slug)
    except Refusal as refusal:
        body = {"code": refusal.code, "message": str(refusal)}
        if refusal.field:
            body["field"] = refusal.field
        response = jsonify(error=body)
        response.status_code = refusal.status
        raise _Refused(response) from None


def _unauthorized(message: str) -> Any:
    response = answer(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="throughline"'
    return response


# Tokens checked lately, by their hash: whether each is live. A channel asks many times a
# second, and a revoked token or a disabled user is refused within TOKEN_SECONDS, as a
# channel's rotated secret is on /hooks (webapp.hooks.channels).
TOKEN_SECONDS = 5.0
_tokens: dict[str, tuple[float, bool]] = {}
_tokens_lock = threading.Lock()


def _live_token(token: str) -> bool:
    digest, now = hashlib.sha256(token.encode()).hexdigest(), time.monotonic()
    with _tokens_lock:
        known = _tokens.get(digest)
    if known is not None and known[0] > now:
        return known[1]
    token_id = accounts.live_token_id(db(), token)
    if token_id is not None:
        note_token_use(token_id)
    with _tokens_lock:
        if len(_tokens) > 1000:
            _tokens.clear()
        _tokens[digest] = (now + TOKEN_SECONDS, token_id is not None)
    return token_id is not None


class _Refused(Exception):
    def __init__(self, response: Any) -> None:
        super().__init__("refused")
        self.response = response


@bp.errorhandler(_Refused)
def _refused(refused: _Refused) -> Any:
    return refused.response


def _request() -> tuple[str, Mapping[str, Any]]:
    body = json_body()
    if not isinstance(body, Mapping):
        raise ApiError(
            422, 'send an object: {"customer": "email:a@b.c", "context": {}}'
        )
    extra = sorted(set(body) - {"customer", "context"})
    if extra:
        raise ApiError(422, f"“{extra[0]}” is not part of a decision request", extra[0])
    customer = body.get("customer")
    if not isinstance(customer, str) or not customer.strip():
        raise ApiError(
            422,
            "name the customer as kind:value (e.g. email:a@b.c) or a profile number",
            "customer",
        )
    context = body.get("context", {})
    if not isinstance(context, Mapping):
        raise ApiError(422, "context is an object of what the channel knows", "context")
    return customer.strip(), context


@bp.post("/decide/<key>")
@signed
def decide_now(key: str) -> Any:
    """What the live table `key` decides for a customer now: {outcome, values, rule,
    version, reason}. A customer without a profile is decided with no traits."""
    _caller()
    ref, context = _request()
    live = store.live(db(), key)
    if live is None:
        if db().scalar(select(DecisionTable.id).where(DecisionTable.key == key)):
            raise ApiError(409, f"the decision table “{key}” has no published version")
        raise ApiError(404, f"there is no decision table “{key}”")
    try:
        customer = read.scope_by_ref(db(), ref) or {
            "id": ref,
            "profile_id": None,
            "traits": {},
            "consent": {},
        }
    except CustomerError as error:
        raise ApiError(error.status, str(error), "customer") from None
    db().rollback()  # the request reads; its connection goes back to the pool now
    scope = {"trigger": {}, "event": {}, "customer": customer, "context": dict(context)}
    decision = decide(live.table, scope)
    _count(key, live.version, decision.outcome)
    return jsonify(
        {
            **decision.as_dict(),
            "version": live.version,
            "table": key,
            "profile_id": customer["profile_id"],
        }
    )


# Decisions answered by this process and not yet written, by (table, version, outcome,
# hour). They are written together once FLUSH_SECONDS have passed since the last write, by
# the request that notices, on one of several counter rows: a crash loses at most that
# long's counts, never a decision.
FLUSH_SECONDS = 1.0
_pending: CountedBy = CountedBy()
_flushed = [time.monotonic()]
_pending_lock = threading.Lock()


_database: list[Any] = []  # where the gathered counts go (the app's database)


def _count(key: str, version: int, outcome: str) -> None:
    now = utcnow()
    found = services()
    if not _database or _database[0] is not found.database:
        _database[:] = [found.database]
        found.on_close.append(_write_waiting)
    with _pending_lock:
        _pending[(key, version, outcome, counters.hour_of(now))] += 1
        if time.monotonic() - _flushed[0] < FLUSH_SECONDS:
            if (
                not _timer
            ):  # what waits is written within a second, even if none follows
                _timer.append(threading.Timer(FLUSH_SECONDS, _write_waiting))
                _timer[0].daemon = True
                _timer[0].start()
            return
        taken = dict(_pending)
        _pending.clear()
        _flushed[0] = time.monotonic()
    _write(taken)


_timer: list[threading.Timer] = []


def _write_waiting() -> None:
    """Write the counts gathered so far (the timer's work, and the app's when it closes)."""
    with _pending_lock:
        for armed in _timer:
            armed.cancel()
        _timer.clear()
        taken = dict(_pending)
        _pending.clear()
        _flushed[0] = time.monotonic()
    if taken:
        _write(taken)


@atexit.register
def _write_the_rest() -> None:
    """Write what a process stopping (a deploy, a restart) has gathered."""
    with _pending_lock:
        taken = dict(_pending)
        _pending.clear()
    if taken and _database:
        with suppress(Exception):  # the database is gone already: nothing to do
            _write(taken)


def _write(taken: dict[tuple[str, int, str, datetime], int]) -> None:
    try:
        with _database[0].session(writer=True) as session:
            counters.set_shard(session, random.choice(API_SHARDS))
            for (table, number, name, hour), amount in taken.items():
                counters.add(
                    session,
                    Metric.DECIDED,
                    hour,
                    version_id=number,
                    node_id=table,
                    label=name,
                    amount=amount,
                )
            session.commit()
    except SQLAlchemyError as error:  # kept for the next write
        log.warning("could not count decisions: %s", type(error).__name__)
        with _pending_lock:
            for slot, amount in taken.items():
                _pending[slot] += amount
