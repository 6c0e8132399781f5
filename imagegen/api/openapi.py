"""The OpenAPI 3.1 document, generated from the route table.

Paths, methods, parameters and responses come from the operations declared
in :mod:`.views` (the same table the URLconf is built from), paths from
``reverse`` (so they follow where the site mounts ``imagegen.urls``), enums
from :mod:`imagegen.choices`, limits from the configured providers and the
settings. ``docs/openapi.json`` is a copy, regenerated with
``manage.py imagegen openapi > docs/openapi.json``; a test fails when it
differs from this module's output.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from .. import conf
from ..choices import AspectRatio, Mode, Resolution, ReviewStatus, Status
from ..exceptions import ImagegenConfigurationError
from ..models import GenerationRun
from ..providers import Capabilities, get_provider
from ..services.runs import MAX_CANDIDATES
from .auth import SCOPES
from .errors import CODES
from .fill_schemas import fill_schemas
from .routing import Answer, Operation, Param
from .views import api

#: The API's own version (the URL says v1); not the package's.
API_VERSION = "1.0.0"

DESCRIPTION = (
    "Create image generation jobs, follow them and read their images. "
    "Authenticate with `Authorization: Bearer ig_...` (tokens from the admin or "
    "`manage.py imagegen token create`) or a logged-in session (unsafe methods then "
    "need Django's CSRF token). A token also needs the scope each operation names "
    "in its security requirement (read, generate, cancel; see bearerAuth), else 403 "
    "insufficient_scope. Every error has the shape of the Error schema. "
    "See docs/api.md."
)


def document() -> dict[str, Any]:
    """The OpenAPI document, as a dict ready for ``json.dumps``."""
    paths: dict[str, dict[str, Any]] = {}
    for (route, _name), methods in api.routes().items():
        item = paths.setdefault(_path(route), {})
        for method, op in methods.items():
            item[method.lower()] = _operation(op)
    result = {
        "openapi": "3.1.0",
        "info": {"title": "imagegen API", "version": API_VERSION, "description": DESCRIPTION},
        "paths": paths,
        "components": {"schemas": schemas(), "securitySchemes": _security_schemes()},
        "security": [{"bearerAuth": []}, {"sessionAuth": []}],
    }
    missing = _refs(result) - {f"#/components/schemas/{n}" for n in result["components"]["schemas"]}
    if missing:
        raise ImproperlyConfigured(f"The API names undefined schemas: {sorted(missing)}")
    return result


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def dumps() -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def _path(route: str) -> str:
    # The API root as mounted, then the route with <converter:name> as {name}.
    root = reverse("imagegen:api-not-found")
    return root + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def _operation(op: Operation) -> dict[str, Any]:
    result: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        result["description"] = op.description
    if op.permission:
        result["x-permission"] = op.permission
    if op.authenticated:
        # OpenAPI 3.1 lets a non-OAuth scheme list the roles an operation
        # needs: the token's scope. Sessions have none (permissions decide).
        result["security"] = [{"bearerAuth": [op.scope]}, {"sessionAuth": []}]
    else:
        result["security"] = []
    if op.parameters:
        result["parameters"] = [_parameter(p) for p in op.parameters]
    if op.body:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    result["responses"] = {str(a.status): _response(a) for a in op.answers}
    return result


def _parameter(param: Param) -> dict[str, Any]:
    schema = param.schema() if callable(param.schema) else param.schema
    result: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "required": param.required,
        "schema": schema,
    }
    if param.description:
        result["description"] = param.description
    if param.explode is not None:
        result["style"] = "form"
        result["explode"] = param.explode
    return result


def _response(answer: Answer) -> dict[str, Any]:
    result: dict[str, Any] = {"description": answer.description}
    if answer.headers:
        result["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    if answer.schema:
        result["content"] = {"application/json": {"schema": _ref(answer.schema)}}
    return result


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _security_schemes() -> dict[str, Any]:
    return {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ig_<43 characters>",
            "description": "An API token (admin: API tokens; or manage.py imagegen token "
            "create). Each token has scopes; an operation's security requirement names "
            "the one it needs (403 insufficient_scope without it): "
            + "; ".join(str(label) for label in SCOPES.values())
            + ".",
            "x-scopes": {name: str(label) for name, label in SCOPES.items()},
        },
        "sessionAuth": {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A logged-in Django session; unsafe methods need X-CSRFToken.",
        },
    }


def limits() -> tuple[int, int]:
    """Longest prompt and most references any configured provider accepts
    (each job is still checked against its own provider's limits)."""
    prompt = references = 0
    for name in conf.configured_providers():
        try:
            caps = get_provider(name).capabilities
        except ImagegenConfigurationError:
            continue
        prompt = max(prompt, caps.max_prompt_length)
        references = max(references, caps.max_references)
    defaults = Capabilities()
    return prompt or defaults.max_prompt_length, references or defaults.max_references


def schemas() -> dict[str, Any]:
    """The component schemas. Responses are closed (``additionalProperties``
    false), so a field added to the serializer but not here fails the tests."""
    max_prompt, max_references = limits()
    return {
        **fill_schemas(),
        "JobCreate": {
            "type": "object",
            "required": ["prompt"],
            "additionalProperties": False,
            "properties": {
                "prompt": {"type": "string", "minLength": 1, "maxLength": max_prompt},
                "mode": {
                    "type": "string",
                    "enum": list(Mode.values),
                    "description": "Default: image-to-image when reference_urls is "
                    "non-empty, else text-to-image.",
                },
                "resolution": {
                    "type": "string",
                    "enum": list(Resolution.values),
                    "default": Resolution.R1K.value,
                },
                "aspect_ratio": {
                    "type": "string",
                    "enum": list(AspectRatio.values),
                    "default": AspectRatio.AUTO.value,
                },
                "reference_urls": {
                    "type": "array",
                    "maxItems": max_references,
                    "items": {"type": "string", "format": "uri"},
                    "default": [],
                    "description": "Public http(s) URLs of reference images (image-to-image).",
                },
                "provider": {
                    "type": ["string", "null"],
                    "description": "A configured provider's name; default: the site's "
                    "IMAGEGEN['PROVIDER'].",
                },
                "candidates": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_CANDIDATES,
                    "default": 1,
                    "description": "How many jobs with these settings: over 1 makes a "
                    "run (price and budgets for all of them at once) and the answer is "
                    "the Run.",
                },
            },
            "examples": [
                {"prompt": "A red bicycle against a blue wall", "aspect_ratio": "16:9"},
                {"prompt": "A lighthouse at dusk, watercolour", "candidates": 3},
            ],
        },
        "Job": {
            "type": "object",
            "additionalProperties": False,
            "required": list(_JOB_PROPERTIES),
            "properties": _JOB_PROPERTIES,
        },
        "Run": {
            "type": "object",
            "additionalProperties": False,
            "required": list(_RUN_PROPERTIES),
            "properties": _RUN_PROPERTIES,
        },
        "JobOrRun": {
            "description": "A job (candidates 1), or the run of its candidates.",
            "oneOf": [_ref("Job"), _ref("Run")],
        },
        "Image": {
            "type": "object",
            "additionalProperties": False,
            "required": list(_IMAGE_PROPERTIES),
            "properties": _IMAGE_PROPERTIES,
        },
        "JobPage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["results", "next", "previous"],
            "properties": {
                "results": {"type": "array", "items": _ref("Job")},
                "next": {"type": ["string", "null"], "format": "uri"},
                "previous": {"type": ["string", "null"], "format": "uri"},
            },
        },
        "Error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": list(CODES)},
                        "message": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "description": "validation_error: messages per field "
                            "(non_field_errors for the request as a whole).",
                            "additionalProperties": {
                                "type": "array",
                                "items": {"type": "string"},
                            },
                        },
                        "permission": {
                            "type": "string",
                            "description": "permission_denied: the permission that is missing.",
                        },
                        "plan": {
                            "$ref": "#/components/schemas/FillPlan",
                            "description": "budget_exceeded of a bulk fill: what the "
                            "budgets cover and what they leave out.",
                        },
                        "scope": {
                            "type": "string",
                            "enum": list(SCOPES),
                            "description": "insufficient_scope: the scope the token lacks.",
                        },
                        "status": {
                            "type": "string",
                            "enum": list(Status.values),
                            "description": "not_cancelable: the job's status.",
                        },
                    },
                }
            },
        },
        "OpenApiDocument": {
            "type": "object",
            "required": ["openapi", "info", "paths"],
        },
    }


_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_MONEY = {
    "type": ["string", "null"],
    "pattern": r"^-?\d+(\.\d+)?$",
    "description": "A decimal amount in currency.",
}

# Properties of Job in the serializer's order. No limits from settings here:
# jobs made under other settings must still conform.
_JOB_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid"},
    "url": {"type": "string", "format": "uri"},
    "status": {"type": "string", "enum": list(Status.values)},
    "is_terminal": {"type": "boolean"},
    "progress": {"type": "number", "minimum": 0, "maximum": 1},
    "provider": {"type": "string"},
    "model": {"type": "string"},
    "mode": {"type": "string", "enum": list(Mode.values)},
    "prompt": {"type": "string"},
    "resolution": {"type": "string", "enum": list(Resolution.values)},
    "aspect_ratio": {"type": "string", "enum": list(AspectRatio.values)},
    "reference_urls": {"type": "array", "items": {"type": "string"}},
    "created_by": {"type": ["string", "null"], "description": "The creator's username."},
    "created_at": _TIME,
    "submitted_at": _NULLABLE_TIME,
    "started_at": _NULLABLE_TIME,
    "completed_at": _NULLABLE_TIME,
    "deadline_at": _TIME,
    "error_code": {
        "type": "string",
        "description": "Why the job failed or expired, for programs: the provider's code "
        "(an HTTP status such as 429, a task code such as CONTENT_VIOLATION) or imagegen's "
        "(EXPIRED, SUBMIT_ANSWERS_LOST...). Empty unless the job failed, expired or waits.",
    },
    "error_message": {
        "type": "string",
        "description": "The message for error_code, for people, in the language of the "
        "request (Accept-Language, with the site's LocaleMiddleware).",
    },
    "estimated_cost": _MONEY,
    "charged_cost": _MONEY,
    "currency": {"type": "string"},
    "retry_of": {
        "type": ["string", "null"],
        "format": "uuid",
        "description": "The job this one retries.",
    },
    "images": {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Image"},
        "description": "Stored results (discarded images are left out).",
    },
}

_RUN_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid"},
    "url": {"type": "string", "format": "uri"},
    "kind": {
        "type": "string",
        "enum": [GenerationRun.Kind.CANDIDATES.value, GenerationRun.Kind.COMPARE.value],
        "description": "candidates: jobs with the same settings; compare: one job per "
        "value of one setting (made in the admin).",
    },
    "created_by": {"type": ["string", "null"], "description": "The creator's username."},
    "created_at": _TIME,
    "estimated_cost": {
        **_MONEY,
        "description": "The run's price: the sum of its jobs' (null if one has none).",
    },
    "currency": {"type": "string"},
    "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
}

_IMAGE_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "index": {"type": "integer", "minimum": 0},
    "url": {"type": "string", "format": "uri"},
    "thumbnail_url": {"type": "string", "format": "uri"},
    "width": {"type": "integer", "minimum": 1},
    "height": {"type": "integer", "minimum": 1},
    "size": {"type": "integer", "minimum": 0, "description": "Bytes."},
    "content_type": {"type": "string"},
    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "title": {"type": "string"},
    "alt_text": {"type": "string"},
    "review_status": {"type": "string", "enum": list(ReviewStatus.values)},
    "created_at": _TIME,
}
