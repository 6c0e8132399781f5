"""The OpenAPI component schemas of the bulk fill operations
(``createFill``, ``getFill`` in :mod:`.views`), merged into the document's
by :func:`imagegen.api.openapi.schemas`. Closed like the others
(``additionalProperties`` false): a field the views add but these do not
name fails the schema tests."""

from __future__ import annotations

from typing import Any

_MONEY = {"type": ["string", "null"], "description": "A decimal amount, 4 places."}
_IDS = {"type": "array", "items": {"type": "string"}}


def fill_schemas() -> dict[str, Any]:
    """``FillCreate`` (the body), ``Fill`` (a fill and its progress) and
    ``FillPlan`` (what a fill makes), with ``FillStarted`` (201) and
    ``FillAnswer`` (200: ``FillPlanAnswer`` or ``FillStarted``), the answers
    of ``createFill``."""
    budget = {
        "type": "object",
        "additionalProperties": False,
        "required": ["key", "label", "limit", "spent", "left"],
        "properties": {
            "key": {"type": "string", "enum": ["USER_DAILY", "USER_MONTHLY", "SITE_MONTHLY"]},
            "label": {"type": "string"},
            "limit": _MONEY,
            "spent": _MONEY,
            "left": _MONEY,
        },
    }
    skipped = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "reason"],
        "properties": {"id": {"type": "string"}, "reason": {"type": "string"}},
    }
    row = {
        "type": "object",
        "additionalProperties": False,
        "required": ["object_id", "job", "status", "error_message", "outcome"],
        "properties": {
            "object_id": {"type": "string"},
            "job": {"type": "string", "format": "uuid"},
            "status": {"type": "string"},
            "error_message": {"type": "string"},
            "outcome": {"type": "string", "enum": ["", "attached", "kept", "discarded"]},
        },
    }
    fill_properties: dict[str, Any] = {
        "id": {"type": "string", "format": "uuid"},
        "url": {"type": "string", "format": "uri"},
        "field": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "review": {"type": "boolean"},
        "summary": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "total",
                "finished",
                "statuses",
                "outcomes",
                "pending_review",
                "trimmed",
            ],
            "properties": {
                "total": {"type": "integer"},
                "finished": {"type": "integer"},
                "statuses": {"type": "object", "additionalProperties": {"type": "integer"}},
                "outcomes": {"type": "object", "additionalProperties": {"type": "integer"}},
                "pending_review": {"type": "integer"},
                "trimmed": {"type": "integer"},
            },
        },
        "jobs": {"type": "array", "items": row},
    }
    return {
        "FillCreate": {
            "type": "object",
            "required": ["field"],
            "additionalProperties": False,
            "properties": {
                "field": {"type": "string", "description": "app_label.Model.field, declared."},
                "ids": {
                    "type": ["array", "null"],
                    "minItems": 1,
                    "items": {"type": ["string", "integer"]},
                    "description": "The objects; default: all.",
                },
                "missing": {"type": "boolean", "default": True},
                "limit": {"type": ["integer", "null"], "minimum": 1},
                "dry_run": {"type": "boolean", "default": False},
                "all_or_none": {"type": "boolean", "default": False},
            },
            "examples": [{"field": "blog.Article.cover", "missing": True, "limit": 100}],
        },
        "FillPlan": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "field",
                "provider",
                "resolution",
                "review",
                "missing",
                "limit",
                "jobs",
                "requested",
                "currency",
                "unit_price",
                "price",
                "budgets",
                "objects",
                "trimmed",
                "skipped",
            ],
            "properties": {
                "field": {"type": "string"},
                "provider": {"type": "string"},
                "resolution": {"type": "string"},
                "review": {"type": "boolean"},
                "missing": {"type": "boolean"},
                "limit": {"type": ["integer", "null"]},
                "jobs": {"type": "integer"},
                "requested": {"type": "integer"},
                "currency": {"type": "string"},
                "unit_price": _MONEY,
                "price": _MONEY,
                "budgets": {"type": "array", "items": budget},
                "objects": _IDS,
                "trimmed": _IDS,
                "skipped": {"type": "array", "items": skipped},
            },
        },
        "Fill": {
            "type": "object",
            "additionalProperties": False,
            "required": list(fill_properties),
            "properties": fill_properties,
        },
        "FillStarted": {
            "type": "object",
            "additionalProperties": False,
            "required": [*fill_properties, "plan"],
            "properties": {
                **fill_properties,
                "plan": {"oneOf": [{"$ref": "#/components/schemas/FillPlan"}, {"type": "null"}]},
            },
        },
        "FillAnswer": {
            "description": "The plan of a dry run, or the fill an earlier request "
            "with the same Idempotency-Key made.",
            "oneOf": [
                {"$ref": "#/components/schemas/FillPlanAnswer"},
                {"$ref": "#/components/schemas/FillStarted"},
            ],
        },
        "FillPlanAnswer": {
            "type": "object",
            "additionalProperties": False,
            "required": ["plan"],
            "properties": {"plan": {"$ref": "#/components/schemas/FillPlan"}},
        },
    }
