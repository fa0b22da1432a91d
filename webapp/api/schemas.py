"""JSON Schemas of what /api/v1 and the webhooks take and answer (OpenAPI 3.1 components)."""

from __future__ import annotations

from typing import Any

from engine.intake.contract import KNOWN_IDENTIFIERS, MAX_TYPE_LENGTH
from engine.models import ChannelKind, JourneyStatus, MoveStatus, Role, RunStatus
from engine.profiles.timeline import KINDS

Schema = dict[str, Any]

TEXT: Schema = {"type": "string"}
WHOLE: Schema = {"type": "integer"}
COUNT: Schema = {"type": "integer", "minimum": 0}
MOMENT: Schema = {"type": "string", "format": "date-time"}
FLAG: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def obj(
    properties: dict[str, Schema], optional: tuple[str, ...] = (), **extra: Any
) -> Schema:
    """An object with these properties, all required but `optional` ones."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        **extra,
    }


def enum(values: Any) -> Schema:
    return {"type": "string", "enum": [str(value) for value in values]}


def page_of(name: str, item: Schema) -> Schema:
    return obj({name: {"type": "array", "items": item}, **PAGING})


PAGING: dict[str, Schema] = {
    "page": {"type": "integer", "minimum": 1},
    "pages": {"type": "integer", "minimum": 1},
    "total": COUNT,
}

MOVE = obj(
    {
        "id": WHOLE,
        "status": enum(MoveStatus),
        "waiting": COUNT,
        "moved": COUNT,
    },
    description="Runs being moved to the new version, batch by batch.",
)

PROBLEM = obj(
    {"node": nullable(TEXT), "message": TEXT, "field": TEXT, "edge": WHOLE},
    optional=("field", "edge"),
    description="One thing wrong with a journey document.",
)

CHANNEL = obj(
    {
        "id": WHOLE,
        "slug": TEXT,
        "name": TEXT,
        "kind": enum(ChannelKind),
        "outbound_url": nullable(TEXT),
        "enabled": FLAG,
        "rate_limit": WHOLE,
        "rotation_grace_until": nullable(MOMENT),
        "created_at": MOMENT,
    }
)

SLUGS: Schema = {"type": "array", "items": TEXT, "minItems": 1}
CLOCK: Schema = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
POLICY_DOCUMENT = obj(
    {
        "frequency_caps": {
            "type": "array",
            "items": obj(
                {
                    "channels": SLUGS,
                    "max": {"type": "integer", "minimum": 1},
                    "per": {
                        "type": "string",
                        "description": "ISO 8601 window, at most P90D",
                    },
                },
                additionalProperties=False,
            ),
        },
        "quiet_hours": obj(
            {
                "start": CLOCK,
                "end": CLOCK,
                "channels": SLUGS,
                "timezone_trait": {"type": "string", "default": "timezone"},
            },
            optional=("timezone_trait",),
            additionalProperties=False,
        ),
        "global_holdout": obj(
            {"percent": {"type": "number", "minimum": 0, "maximum": 50}},
            additionalProperties=False,
        ),
    },
    optional=("frequency_caps", "quiet_hours", "global_holdout"),
    additionalProperties=False,
    description="Each part optional; a send node marked transactional meets none.",
)

OUTCOME: Schema = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"}
DECISION_DOCUMENT = obj(
    {
        "schema": {"const": "throughline.decision/v1"},
        "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 2000},
        "rules": {
            "type": "array",
            "maxItems": 200,
            "items": obj(
                {"when": ANY_OBJECT, "outcome": OUTCOME, "values": ANY_OBJECT},
                optional=("values",),
                additionalProperties=False,
            ),
        },
        "default": obj(
            {"outcome": OUTCOME, "values": ANY_OBJECT},
            optional=("values",),
            additionalProperties=False,
        ),
    },
    optional=("schema", "description", "rules"),
    additionalProperties=False,
    description="Rules tested in order, the first that holds decides; else the default. "
    "`when` is a rule as in journeys; outcomes `default` and `error` are reserved.",
)

EVENT_SCHEMA_DOCUMENT = obj(
    {
        "schema": {
            "type": "object",
            "description": "A JSON Schema (draft 2020-12) of the event's `properties`.",
        },
        "mode": {"type": "string", "enum": ["enforce", "strip", "flag"]},
        "channels": {
            "type": "array",
            "items": TEXT,
            "description": "The channels it holds for; empty or absent: every channel.",
        },
    },
    optional=("mode", "channels"),
    additionalProperties=False,
)

SCHEMAS: dict[str, Schema] = {
    "EventSchemaDocument": EVENT_SCHEMA_DOCUMENT,
    "EventSchema": obj(
        {
            "event_type": TEXT,
            "schema": ANY_OBJECT,
            "mode": TEXT,
            "channels": {"type": "array", "items": TEXT},
            "version": WHOLE,
            "updated_at": MOMENT,
            "updated_by": nullable(TEXT),
            "quarantined": COUNT,
        },
        description="`quarantined`: events refused by it, kept to be replayed.",
    ),
    "DecisionDocument": DECISION_DOCUMENT,
    "DecisionTable": obj(
        {
            "key": TEXT,
            "name": TEXT,
            "draft": DECISION_DOCUMENT,
            "revision": WHOLE,
            "live_version": nullable(WHOLE),
            "live": nullable(DECISION_DOCUMENT),
            "updated_at": MOMENT,
        }
    ),
    "DecisionList": page_of(
        "decisions",
        obj(
            {
                "key": TEXT,
                "name": TEXT,
                "live_version": nullable(WHOLE),
                "revision": WHOLE,
            }
        ),
    ),
    "DecideRequest": obj(
        {
            "customer": {
                "type": "string",
                "minLength": 1,
                "description": "kind:value of any identity (email:a@b.c), or a profile "
                "number; a customer without a profile is decided with no traits.",
            },
            "context": ANY_OBJECT,
        },
        optional=("context",),
        additionalProperties=False,
    ),
    "Decision": obj(
        {
            "outcome": TEXT,
            "values": ANY_OBJECT,
            "rule": nullable({"type": "integer", "minimum": 1}),
            "reason": TEXT,
            "version": WHOLE,
            "table": TEXT,
            "profile_id": nullable(WHOLE),
        },
        description="`rule`: the number (from 1) of the rule that matched; null when "
        "the default decided.",
    ),
    "PolicyDocument": POLICY_DOCUMENT,
    "Policies": obj(
        {
            "policies": POLICY_DOCUMENT,
            "revision": COUNT,
            "updated_at": nullable(MOMENT),
            "updated_by": nullable(TEXT),
        }
    ),
    "Error": obj(
        {
            "error": obj(
                {"code": TEXT, "message": TEXT, "field": TEXT},
                optional=("field",),
                description="`code` is stable, `message` a sentence, `field` the path "
                "of the input at fault when there is one.",
            ),
            "problems": {"type": "array", "items": ref("Problem")},
        },
        optional=("problems",),
    ),
    "Problem": PROBLEM,
    "Me": obj({"id": WHOLE, "email": TEXT, "role": enum(Role)}),
    "Channel": CHANNEL,
    "ChannelList": page_of("channels", ref("Channel")),
    "NewChannel": obj(
        {
            "slug": {"type": "string", "minLength": 1},
            "kind": enum(ChannelKind),
            "name": TEXT,
            "outbound_url": nullable(TEXT),
            "rate_limit": {"type": "integer", "minimum": 1},
        },
        optional=("name", "outbound_url", "rate_limit"),
    ),
    "CreatedChannel": {
        "allOf": [
            ref("Channel"),
            obj({"inbound_secret": TEXT, "outbound_secret": TEXT}),
        ],
        "description": "The channel and its secrets: shown in this answer only.",
    },
    "Rotation": obj(
        {
            "grace_period": {
                "type": "string",
                "description": "ISO 8601 duration the old inbound secret keeps working",
                "default": "P1D",
            }
        },
        optional=("grace_period",),
    ),
    "Rotated": obj(
        {
            "slug": TEXT,
            "inbound_secret": TEXT,
            "outbound_secret": TEXT,
            "previous_valid_until": MOMENT,
        }
    ),
    "Customer": obj(
        {
            "id": WHOLE,
            "identities": {
                "type": "array",
                "items": obj({"kind": TEXT, "value": TEXT}),
            },
            "traits": ANY_OBJECT,
            "consent": {"type": "object", "additionalProperties": FLAG},
            "runs": {
                "type": "array",
                "items": obj(
                    {
                        "id": WHOLE,
                        "journey_id": WHOLE,
                        "status": enum(RunStatus),
                        "version": WHOLE,
                        "node": nullable(TEXT),
                        "started_at": MOMENT,
                        "converted": FLAG,
                    }
                ),
            },
            "created_at": MOMENT,
        }
    ),
    "Timeline": obj(
        {
            "customer_id": WHOLE,
            "items": {
                "type": "array",
                "items": obj(
                    {"at": MOMENT, "kind": enum(KINDS), "cursor": TEXT},
                    description="Further fields by kind. Events, steps and deliveries "
                    "have `trace_id`: the W3C trace id of the webhook request that caused "
                    "them (null for entries from before traces were kept).",
                ),
            },
            "next_before": nullable(TEXT),
        }
    ),
    "ConsentChanges": {
        "type": "object",
        "additionalProperties": FLAG,
        "minProperties": 1,
        "description": 'Channel slug to allowed, e.g. {"email": false}.',
    },
    "Consent": obj(
        {
            "customer_id": WHOLE,
            "consent": {"type": "object", "additionalProperties": FLAG},
        }
    ),
    "Erased": obj(
        {
            "erased": WHOLE,
            "removed": {"type": "object", "additionalProperties": COUNT},
        }
    ),
    "JourneyDocument": {
        "type": "object",
        "description": "A `throughline.journey/v1` document (docs/journey-format.md).",
        "properties": {
            "schema": TEXT,
            "name": TEXT,
            "description": TEXT,
            "entry": ANY_OBJECT,
            "goal": ANY_OBJECT,
            "exit_on": {"type": "array"},
            "throttle": ANY_OBJECT,
            "nodes": {"type": "array", "items": ANY_OBJECT},
            "edges": {"type": "array", "items": ANY_OBJECT},
            "layout": ANY_OBJECT,
        },
    },
    "CreatedJourney": obj(
        {
            "id": WHOLE,
            "draft": ref("JourneyDocument"),
            "revision": WHOLE,
            "status": enum(JourneyStatus),
        }
    ),
    "JourneyList": page_of(
        "journeys",
        obj(
            {
                "id": WHOLE,
                "name": TEXT,
                "status": enum(JourneyStatus),
                "live_version": nullable(WHOLE),
                "revision": WHOLE,
            }
        ),
    ),
    "Journey": obj(
        {
            "id": WHOLE,
            "name": TEXT,
            "status": enum(JourneyStatus),
            "revision": WHOLE,
            "draft": ref("JourneyDocument"),
            "problems": {"type": "array", "items": ref("Problem")},
            "live": nullable(
                obj(
                    {
                        "version": WHOLE,
                        "published_at": MOMENT,
                        "document": ref("JourneyDocument"),
                    }
                )
            ),
            "updated_at": MOMENT,
        }
    ),
    "PublishRequest": obj(
        {
            "migrate": {
                "type": "object",
                "additionalProperties": TEXT,
                "description": 'Step (or "v<n>:<step>") to a step of the new version, '
                '"stay" or "exit"; steps left out follow the default plan.',
            }
        },
        optional=("migrate",),
    ),
    "Published": obj(
        {
            "version": WHOLE,
            "status": enum(JourneyStatus),
            "migrated": {"type": "object", "additionalProperties": COUNT},
            "move": ref("Move"),
        },
        optional=("move",),
    ),
    "Move": MOVE,
    "PublishPlan": obj(
        {
            "from_versions": {"type": "array", "items": WHOLE},
            "steps": {
                "type": "array",
                "items": obj(
                    {
                        "version": WHOLE,
                        "node": TEXT,
                        "type": TEXT,
                        "label": TEXT,
                        "summary": TEXT,
                        "waiting": COUNT,
                        "default": TEXT,
                    }
                ),
            },
            "targets": {"type": "array", "items": TEXT},
            "target_steps": {
                "type": "array",
                "items": obj(
                    {"node": TEXT, "type": TEXT, "label": TEXT, "summary": TEXT}
                ),
            },
            "problems": {"type": "array", "items": ref("Problem")},
            "moving": nullable(ref("Move")),
        }
    ),
    "Transition": obj({"version": nullable(WHOLE), "status": enum(JourneyStatus)}),
    "SimulationRequest": obj(
        {
            "version": {
                "oneOf": [{"type": "string", "enum": ["draft", "live"]}, WHOLE],
                "default": "draft",
            },
            "customer": ANY_OBJECT,
            "events": {
                "type": "array",
                "items": obj(
                    {
                        "type": {"type": "string", "minLength": 1},
                        "properties": ANY_OBJECT,
                        "traits": ANY_OBJECT,
                        "channel": {"type": "string"},
                        "after": {"type": "string", "default": "PT0S"},
                    },
                    optional=("properties", "traits", "channel", "after"),
                ),
            },
        },
        optional=("version", "customer", "events"),
    ),
    "Simulation": obj(
        {
            "steps": {"type": "array"},
            "sends": {"type": "array"},
            "webhooks": {"type": "array"},
            "final": {},
            "runs": {
                "type": "array",
                "items": obj(
                    {
                        "run": WHOLE,
                        "status": enum(RunStatus),
                        "node": nullable(TEXT),
                        "converted": FLAG,
                        "wake_at": nullable(MOMENT),
                    }
                ),
            },
            "customer": obj({"traits": ANY_OBJECT}),
            "started_at": MOMENT,
        }
    ),
    "Stats": obj(
        {
            "entered": COUNT,
            "active": COUNT,
            "completed": COUNT,
            "exited": COUNT,
            "failed": COUNT,
            "converted": COUNT,
            "nodes": {
                "type": "object",
                "additionalProperties": obj(
                    {
                        "entered": COUNT,
                        "waiting": COUNT,
                        "completed": COUNT,
                        "failed": COUNT,
                    }
                ),
            },
        }
    ),
    "Event": obj(
        {
            "type": {"type": "string", "minLength": 1, "maxLength": MAX_TYPE_LENGTH},
            "customer": {
                "type": "object",
                "minProperties": 1,
                "description": "Identifiers: "
                + ", ".join(KNOWN_IDENTIFIERS)
                + " or any lower-case kind.",
                "additionalProperties": TEXT,
            },
            "traits": ANY_OBJECT,
            "properties": ANY_OBJECT,
            "occurred_at": MOMENT,
        },
        optional=("traits", "properties", "occurred_at"),
        additionalProperties=False,
    ),
    "Accepted": obj({"event_id": WHOLE}),
    "Batch": obj(
        {
            "events": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": {
                    "allOf": [
                        obj({"id": {"type": "string", "minLength": 1}}),
                        {"description": "and the fields of an Event"},
                    ]
                },
            }
        }
    ),
    "BatchResults": obj(
        {
            "results": {
                "type": "array",
                "items": obj(
                    {
                        "id": {"description": "the event's id as sent"},
                        "status": {"type": "integer", "enum": [202, 400, 500]},
                        "event_id": WHOLE,
                        "duplicate": FLAG,
                        "error": obj(
                            {"field": nullable(TEXT), "message": TEXT, "code": TEXT},
                            optional=("code",),
                        ),
                        "problems": {
                            "type": "array",
                            "items": obj({"pointer": TEXT, "message": TEXT}),
                            "description": "How the event breaks its schema (code "
                            "schema_violation): a JSON pointer and a sentence each.",
                        },
                    },
                    optional=("event_id", "duplicate", "error", "problems"),
                ),
            },
            "accepted": COUNT,
            "rejected": COUNT,
        }
    ),
}
