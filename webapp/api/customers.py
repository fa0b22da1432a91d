from __future__ import annotations

from typing import Any

from flask import jsonify, request

from engine.models import Role
from engine.profiles import CustomerError, privacy, read
from webapp.api import bp
from webapp.api.errors import answer, json_body
from webapp.security import acting_user, requires
from webapp.services import db, services


@bp.errorhandler(CustomerError)
def _customer_error(error: CustomerError) -> Any:
    return answer(error.status, str(error), error.field)


@bp.get("/customers/<path:ref>")
@requires(Role.viewer)
def get_customer(ref: str) -> Any:
    """A profile by number or `kind:value` of any identity (merged profiles lead to the survivor)."""
    return jsonify(read.describe(db(), read.find(db(), ref)))


@bp.get("/customers/<path:ref>/timeline")
@requires(Role.viewer)
def customer_timeline(ref: str) -> Any:
    """Events in, steps, deliveries and suppressions, profile changes: newest first."""
    customer = read.find(db(), ref)
    raw = request.args.get("limit", "200")
    wanted = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0
    limit = min(wanted, 1000) if wanted > 0 else 200
    items = read.timeline(db(), customer, limit, request.args.get("before") or None)
    return jsonify(
        customer_id=customer.id,
        items=items,
        next_before=items[-1]["cursor"] if len(items) == limit else None,
    )


@bp.put("/customers/<path:ref>/consent")
@requires(Role.marketer)
def put_consent(ref: str) -> Any:
    """Set consent per channel: {"email": false, "sms": true}."""
    customer = read.find(db(), ref)
    consent = privacy.set_consent(db(), customer, json_body(), acting_user())
    db().commit()
    return jsonify(customer_id=customer.id, consent=consent)


@bp.delete("/customers/<path:ref>")
@requires(Role.admin)
def erase_customer(ref: str) -> Any:
    """Erase the profile and everything about it (runs, events, deliveries); 409 when a
    merge folded it into another profile while the erasure waited for it."""
    customer = read.find(db(), ref)
    customer_id = customer.id
    counts = privacy.erase(db(), customer, acting_user())
    db().commit()
    services().database.scrub_log()
    return jsonify(erased=customer_id, removed=counts)
