"""Answering while the database is unavailable: a JSON 503 with
``Retry-After``, never Django's HTML error page.

Django opens a request's ``ATOMIC_REQUESTS`` transactions before it calls
the view, so with the database down the error would be raised outside the
view. :func:`answers_outage` opts the view out, and the view opens the same
transactions itself where it needs the database (:func:`atomic_requests`),
inside the outage handling.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

from django.db import InterfaceError, OperationalError, connections, transaction
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("imagegen")

#: What an unreachable database (refused, dropped or timed-out connections,
#: a database that is shutting down or locked) raises through Django.
DATABASE_OUTAGE = (OperationalError, InterfaceError)
#: Seconds a client is asked to wait before trying again (``Retry-After``).
RETRY_AFTER = 5

View = Callable[..., HttpResponse]


def answers_outage(unavailable: Callable[[], HttpResponse]) -> Callable[[View], View]:
    """Decorate a view so that a database outage while it runs (the session
    or token lookup included) answers ``unavailable()`` with ``Retry-After``.
    The view is left out of ``ATOMIC_REQUESTS``: a view that writes opens
    :func:`atomic_requests` itself. The log line has the request's path:
    not for views whose path holds a secret (the callback's token)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except DATABASE_OUTAGE as exc:
                logger.warning(
                    "The database is unavailable; %s %s answered 503: %s",
                    request.method,
                    request.path,
                    exc,
                )
                response = unavailable()
                response["Retry-After"] = str(RETRY_AFTER)
                return response

        for alias in connections:
            wrapped = transaction.non_atomic_requests(using=alias)(wrapped)
        return wrapped

    return decorate


@contextlib.contextmanager
def atomic_requests() -> Iterator[None]:
    """The transactions Django opens for ``ATOMIC_REQUESTS`` (one per
    database that sets it), for a view decorated with :func:`answers_outage`."""
    with contextlib.ExitStack() as stack:
        for alias, settings_dict in connections.settings.items():
            if settings_dict.get("ATOMIC_REQUESTS"):
                stack.enter_context(transaction.atomic(using=alias))
        yield
