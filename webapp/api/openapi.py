"""The OpenAPI 3.1 description of /api/v1 and the inbound webhooks, kept beside the views.

tests/integration/test_openapi.py compares its paths, methods and roles with the url_map, and
schemathesis checks the answers against it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from engine.models import LARGEST_ID, JourneyStatus, Role
from webapp.api.schemas import SCHEMAS, Schema, ref
from webapp.hooks.views import MAX_BATCH, MAX_BATCH_BODY, MAX_BODY

PUBLIC = "public"
SIGNED = "signed"

ERRORS = {
    400: "The request cannot be read (not JSON, or holding what cannot be stored).",
    401: "No valid credentials.",
    403: "The token's role is not enough.",
    404: "Nothing by that name.",
    409: "Not in this state.",
    412: "The draft (or the policies) changed since the revision in If-Match.",
    413: "The body is too large.",
    422: "The request is read but not valid; `field` says where.",
    429: "Over the channel's rate or the backlog; see Retry-After.",
    503: "Events cannot be taken in now; retry with the same webhook-id.",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}}}


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _param(name: str, where: str, schema: Schema, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "schema": schema, **extra}


JOURNEY_ID = _param(
    "journey_id",
    "path",
    {"type": "integer", "minimum": 0, "maximum": LARGEST_ID},
    required=True,
    description="The journey's number.",
)
SLUG = _param("slug", "path", {"type": "string"}, required=True)
REF = _param(
    "ref",
    "path",
    {"type": "string"},
    required=True,
    description="The profile's number, or `kind:value` of any of its identities.",
)
PAGE = _param("page", "query", {"type": "integer", "minimum": 1})
EVENT_TYPE = _param(
    "event_type",
    "path",
    {"type": "string"},
    required=True,
    description="The event type.",
)
TABLE_KEY = _param(
    "key", "path", {"type": "string"}, required=True, description="The table's key."
)


def _operation(
    summary: str,
    role: Role | str,
    answers: dict[int, str | None],
    *,
    params: tuple[dict[str, Any], ...] = (),
    body: str | None = None,
    body_required: bool = True,
    errors: tuple[int, ...] = (),
) -> dict[str, Any]:
    """One operation: `answers` maps a success status to its schema's name; error answers
    follow from the role, the parameters, the body and `errors`."""
    codes = set(errors)
    if isinstance(role, Role):
        codes.add(401)
        if role is not Role.viewer:
            codes.add(403)
    if any(p["in"] == "path" for p in params):
        codes.add(404)
    if body is not None:
        codes |= {400, 413}
    responses: dict[str, Any] = {
        str(status): {
            "description": "Done.",
            **({"content": _json(ref(name))} if name else {}),
        }
        for status, name in answers.items()
    }
    for status in sorted(codes):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": _json(ref("Error")),
            **({"headers": RETRY_AFTER} if status in {429, 503} else {}),
        }
    found: dict[str, Any] = {
        "summary": summary,
        "x-role": role.value if isinstance(role, Role) else role,
        "responses": responses,
    }
    if params:
        found["parameters"] = list(params)
    if body is not None:
        found["requestBody"] = {
            "required": body_required,
            "content": _json(ref(body)),
        }
    if not isinstance(role, Role):
        found["security"] = []
    return found


def _webhook(summary: str, body: str, limit: int, answer: tuple[int, str]) -> Any:
    headers = (
        _param(
            "webhook-id",
            "header",
            {"type": "string", "maxLength": 255},
            required=True,
            description="The message id: the idempotency key, the same on every retry.",
        ),
        _param(
            "webhook-timestamp",
            "header",
            {"type": "string", "pattern": "^[0-9]+$"},
            required=True,
            description="Unix time in seconds; within 5 minutes of the server's clock.",
        ),
        _param(
            "webhook-signature",
            "header",
            {"type": "string"},
            required=True,
            description="`v1,<base64 HMAC-SHA256 of id.timestamp.body>` by the channel's "
            "inbound secret; several separated by spaces.",
        ),
    )
    operation = _operation(
        f"{summary} (at most {limit // 1024} KiB)",
        SIGNED,
        {answer[0]: answer[1]},
        params=(SLUG, *headers),
        body=body,
        errors=(401, 409, 429, 503),
    )
    operation["description"] = (
        "Signed per Standard Webhooks with the channel's inbound secret, instead of a token."
    )
    if answer[0] == 202:
        operation["responses"]["202"]["headers"] = {
            "Idempotent-Replayed": {
                "description": "`true` when this webhook-id was stored before.",
                "schema": {"type": "string"},
            }
        }
    return operation


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/openapi.json": {
        "get": _operation("This document", PUBLIC, {200: None}),
    },
    "/api/v1/me": {"get": _operation("The token's user", Role.viewer, {200: "Me"})},
    "/api/v1/channels": {
        "get": _operation(
            "Channels by slug", Role.viewer, {200: "ChannelList"}, params=(PAGE,)
        ),
        "post": _operation(
            "Create a channel; its secrets are in this answer and never again",
            Role.admin,
            {201: "CreatedChannel"},
            body="NewChannel",
            errors=(422,),
        ),
    },
    "/api/v1/channels/{slug}": {
        "get": _operation("A channel", Role.viewer, {200: "Channel"}, params=(SLUG,)),
    },
    "/api/v1/channels/{slug}/rotate": {
        "post": _operation(
            "New secrets; the old inbound one works for the grace period",
            Role.admin,
            {200: "Rotated"},
            params=(SLUG,),
            body="Rotation",
            body_required=False,
            errors=(422,),
        ),
    },
    "/api/v1/customers/{ref}": {
        "get": _operation(
            "A profile (a merged one leads to the survivor)",
            Role.viewer,
            {200: "Customer"},
            params=(REF,),
            errors=(400,),
        ),
        "delete": _operation(
            "Erase the profile and everything about it (409 when a merge folded it "
            "into another profile meanwhile: nothing erased)",
            Role.admin,
            {200: "Erased"},
            params=(REF,),
            errors=(400, 409),
        ),
    },
    "/api/v1/customers/{ref}/timeline": {
        "get": _operation(
            "Events, steps, deliveries and profile changes, newest first",
            Role.viewer,
            {200: "Timeline"},
            params=(
                REF,
                _param("limit", "query", {"type": "integer", "minimum": 1}),
                _param(
                    "before",
                    "query",
                    {"type": "string"},
                    description="A `cursor` of the last entry seen, or an ISO 8601 date-time.",
                ),
            ),
            errors=(400,),
        ),
    },
    "/api/v1/customers/{ref}/consent": {
        "put": _operation(
            "Set consent per channel",
            Role.marketer,
            {200: "Consent"},
            params=(REF,),
            body="ConsentChanges",
            errors=(422,),
        ),
    },
    "/api/v1/journeys": {
        "get": _operation(
            "Journeys by number",
            Role.viewer,
            {200: "JourneyList"},
            params=(
                _param(
                    "status", "query", {"type": "string", "enum": list(JourneyStatus)}
                ),
                PAGE,
            ),
            errors=(422,),
        ),
        "post": _operation(
            "Create a journey from a document (422 with every problem if it has any)",
            Role.marketer,
            {201: "CreatedJourney"},
            body="JourneyDocument",
            errors=(422,),
        ),
    },
    "/api/v1/journeys/{journey_id}": {
        "get": _operation(
            "A journey: its draft, the draft's problems, its live version",
            Role.viewer,
            {200: "Journey"},
            params=(JOURNEY_ID,),
        ),
    },
    "/api/v1/decisions": {
        "get": _operation(
            "Decision tables by key",
            Role.viewer,
            {200: "DecisionList"},
            params=(PAGE,),
        ),
        "post": _operation(
            "Create a decision table from a document (422 naming each problem)",
            Role.marketer,
            {201: "DecisionTable"},
            body="DecisionDocument",
            errors=(409, 422),
        ),
    },
    "/api/v1/decisions/{key}": {
        "get": _operation(
            "A decision table: its draft and its live version",
            Role.viewer,
            {200: "DecisionTable"},
            params=(TABLE_KEY,),
        ),
    },
    "/api/v1/decisions/{key}/draft": {
        "put": _operation(
            "Replace the draft (422 naming each problem)",
            Role.marketer,
            {200: "DecisionTable"},
            params=(
                TABLE_KEY,
                _param(
                    "If-Match",
                    "header",
                    {"type": "string"},
                    description="The draft revision the change is based on.",
                ),
            ),
            body="DecisionDocument",
            errors=(412, 422),
        ),
    },
    "/api/v1/decisions/{key}/publish": {
        "post": _operation(
            "Make the draft the live version (409 naming live journeys whose decide "
            "steps have other outcomes)",
            Role.marketer,
            {200: "DecisionTable"},
            params=(TABLE_KEY,),
            errors=(409, 422),
        ),
    },
    "/api/v1/decide/{key}": {
        "post": {
            **_operation(
                "What the live table decides for a customer now",
                Role.viewer,
                {200: "Decision"},
                params=(
                    TABLE_KEY,
                    _param(
                        "channel",
                        "query",
                        {"type": "string"},
                        description="With no token: the channel whose inbound secret "
                        "signed the request (webhook-id, webhook-timestamp, "
                        "webhook-signature as on /hooks).",
                    ),
                ),
                body="DecideRequest",
                errors=(409, 422),
            ),
            "x-role": SIGNED,
            "security": [{"bearer": []}, {}],
        },
    },
    "/api/v1/schemas/{event_type}": {
        "get": _operation(
            "The schema of an event type's properties (the tracking plan)",
            Role.viewer,
            {200: "EventSchema"},
            params=(EVENT_TYPE,),
        ),
        "put": _operation(
            "Make a JSON Schema the event type's, as a new version, with its mode",
            Role.marketer,
            {200: "EventSchema"},
            params=(EVENT_TYPE,),
            body="EventSchemaDocument",
            errors=(422,),
        ),
    },
    "/api/v1/policies": {
        "get": _operation(
            "The brand-wide policies above every journey",
            Role.viewer,
            {200: "Policies"},
        ),
        "put": _operation(
            "Replace the policies: frequency caps, quiet hours, global holdout",
            Role.marketer,
            {200: "Policies"},
            params=(
                _param(
                    "If-Match",
                    "header",
                    {"type": "string"},
                    description="The policies revision the change is based on.",
                ),
            ),
            body="PolicyDocument",
            errors=(412, 422),
        ),
    },
    "/api/v1/journeys/{journey_id}/draft": {
        "put": _operation(
            "Replace the draft (its problems are answered, not refused)",
            Role.marketer,
            {200: "Journey"},
            params=(
                JOURNEY_ID,
                _param(
                    "If-Match",
                    "header",
                    {"type": "string"},
                    description="The draft revision the change is based on.",
                ),
            ),
            body="JourneyDocument",
            errors=(409, 412, 422),
        ),
    },
    "/api/v1/journeys/{journey_id}/publish-plan": {
        "get": _operation(
            "Where publishing the draft would take the customers waiting in the journey",
            Role.viewer,
            {200: "PublishPlan"},
            params=(JOURNEY_ID,),
            errors=(422,),
        ),
    },
    "/api/v1/journeys/{journey_id}/publish": {
        "post": _operation(
            "Publish the draft and move the waiting customers by the plan",
            Role.marketer,
            {200: "Published"},
            params=(JOURNEY_ID,),
            body="PublishRequest",
            body_required=False,
            errors=(409, 422),
        ),
    },
    "/api/v1/journeys/{journey_id}/pause": {
        "post": _operation(
            "Stop entries; hold runs where they are",
            Role.marketer,
            {200: "Transition"},
            params=(JOURNEY_ID,),
            errors=(409,),
        ),
    },
    "/api/v1/journeys/{journey_id}/resume": {
        "post": _operation(
            "Open entries again",
            Role.marketer,
            {200: "Transition"},
            params=(JOURNEY_ID,),
            errors=(409,),
        ),
    },
    "/api/v1/journeys/{journey_id}/simulate": {
        "post": _operation(
            "Run a sample customer and timed events through the draft or a version",
            Role.marketer,
            {200: "Simulation"},
            params=(JOURNEY_ID,),
            body="SimulationRequest",
            errors=(409, 422),
        ),
    },
    "/api/v1/journeys/{journey_id}/stats": {
        "get": _operation(
            "Runs by state and per step",
            Role.viewer,
            {200: "Stats"},
            params=(JOURNEY_ID,),
        ),
    },
    "/hooks/{slug}": {
        "post": _webhook(
            "One event, answered 202 once stored", "Event", MAX_BODY, (202, "Accepted")
        ),
    },
    "/hooks/{slug}/batch": {
        "post": _webhook(
            f"Up to {MAX_BATCH:,} events, each with its own id, answered per event",
            "Batch",
            MAX_BATCH_BODY,
            (200, "BatchResults"),
        ),
    },
}


@cache
def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Throughline",
            "version": "1",
            "description": "The JSON API under /api/v1 (a bearer token of a user, checked "
            "against the role in each operation's x-role) and the inbound webhooks.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`throughline token create --email E` prints one.",
                }
            },
            "schemas": SCHEMAS,
        },
    }
