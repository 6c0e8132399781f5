"""The route table: one declaration per operation, read by the URLconf and
by the OpenAPI document, so the two cannot disagree.

A handler is registered with :meth:`Api.operation`, which records its
method, route, parameters, request body and responses. :meth:`Api.urlpatterns`
groups the operations by route into one view per URL that dispatches on the
method (405 with ``Allow`` for the others), authenticates, checks the
token's scope (each authenticated operation must name one of
:data:`.auth.SCOPES`: declaring one without it fails at import), turns
:class:`~.errors.ApiError` into the error shape, answers a database outage
with ``503 service_unavailable`` and ``Retry-After`` (:mod:`.outage`), and
marks every response ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, re_path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from . import auth, errors
from .errors import ApiError
from .outage import answers_outage, atomic_requests

Handler = Callable[..., HttpResponse]


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter; ``schema`` is its JSON Schema."""

    name: str
    location: str  # "path", "query" or "header"
    # A callable for schemas that depend on settings (read when the document is built).
    schema: dict[str, Any] | Callable[[], dict[str, Any]]
    description: str = ""
    required: bool = False
    explode: bool | None = None


@dataclass(frozen=True)
class Answer:
    """One documented response: a status, what it means, the component
    schema of its body (None: no body), and response headers."""

    status: int
    description: str
    schema: str | None = "Error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    method: str
    route: str  # Django route under the API root, e.g. "jobs/<uuid:job_id>/"
    name: str  # URL name in the ``imagegen`` namespace
    operation_id: str
    summary: str
    handler: Handler
    description: str = ""
    parameters: tuple[Param, ...] = ()
    body: str | None = None  # component schema of the JSON request body
    answers: tuple[Answer, ...] = ()
    authenticated: bool = True
    permission: str | None = None  # documented; the handler checks it
    # The token scope it needs (auth.SCOPES); the dispatcher checks it.
    scope: str | None = None

    def __post_init__(self) -> None:
        # No operation without a scope: one added later cannot be reached by
        # every token by default.
        if self.authenticated and self.scope not in auth.SCOPES:
            raise ValueError(
                f"{self.method} {self.route} needs scope= one of {list(auth.SCOPES)}, "
                f"not {self.scope!r}."
            )
        if not self.authenticated and self.scope is not None:
            raise ValueError(f"{self.method} {self.route} is public: it takes no scope.")


class Api:
    """A set of operations and the URL patterns that serve them."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def operation(self, method: str, route: str, **options: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(method=method.upper(), route=route, handler=handler, **options)
            )
            return handler

        return register

    def routes(self) -> dict[tuple[str, str], dict[str, Operation]]:
        """Operations by (route, URL name), then by method, in declaration order."""
        table: dict[tuple[str, str], dict[str, Operation]] = {}
        for op in self.operations:
            methods = table.setdefault((op.route, op.name), {})
            if op.method in methods:
                raise ValueError(f"{op.method} {op.route} is declared twice")
            methods[op.method] = op
        names = [name for _route, name in table]
        if len(names) != len(set(names)):
            raise ValueError("Each route needs its own URL name.")
        return table

    def urlpatterns(self) -> list[URLPattern]:
        patterns = [
            path(route, dispatcher(methods), name=name)
            for (route, name), methods in self.routes().items()
        ]
        # Anything else under the API root answers in the API's shape, not HTML.
        patterns.append(re_path(r"^", dispatcher({}), name="api-not-found"))
        return patterns


def dispatcher(methods: dict[str, Operation]) -> Callable[..., HttpResponse]:
    """The view of one URL: method dispatch, authentication, the token's
    scope, error shape, outage answer, no-store."""

    # The API does its own authentication: the site's LoginRequiredMiddleware
    # must not redirect a token request to a login page, and CSRF is checked
    # for session requests only (auth.enforce_csrf). Jobs change every second
    # and carry users' data: no answer is ever stored by caches.
    @csrf_exempt
    @login_not_required
    @never_cache
    @answers_outage(lambda: errors.service_unavailable().response())
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            if not methods:
                raise ApiError("not_found", _("No such API endpoint."))
            op = methods.get(request.method or "")
            if op is None:
                raise ApiError(
                    "method_not_allowed",
                    _("Method %(method)s is not allowed here.") % {"method": request.method},
                    headers={"Allow": ", ".join(methods)},
                )
            if not op.authenticated:
                # Public (the OpenAPI document): no data, no database, served
                # through an outage too.
                return op.handler(request, **kwargs)
            # Where the site sets ATOMIC_REQUESTS, as Django would; a refusal
            # (ApiError) rolls back what the operation wrote: it changes nothing.
            with atomic_requests():
                request.user, request.api_token = auth.authenticate(request)
                auth.require_scope(request.api_token, op.scope)  # type: ignore[arg-type]
                return op.handler(request, **kwargs)
        except ApiError as exc:
            return exc.response()

    view.api_methods = tuple(methods)  # type: ignore[attr-defined]
    return view
