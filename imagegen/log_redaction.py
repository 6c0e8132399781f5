"""Keeping callback tokens out of logs.

A callback URL carries its job's token (``.../callbacks/<provider>/<job
id>/<token>/``, built by :func:`imagegen.services.jobs.callback_url`), so
anything that logs a request's path logs a credential: Django's
``django.request`` logger on 4xx and 5xx answers ("Internal Server Error:
/imagegen/callbacks/...", with the request attached to the record and,
for an exception, its traceback), ``django.security.*`` on suspicious
requests (the request attached), and runserver's ``django.server`` request
lines. :func:`install` puts :class:`RedactCallbackTokens` on those loggers;
the callback view also hides the token in its request
(:func:`hide_token`) and answers its own errors, so nothing it raises
reaches Django's logging. Web server access logs (gunicorn, nginx) are
outside Django: docs/reliability.md says how to keep the path out of them.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest

#: What stands in a log for a callback token.
REDACTED = "[token]"

#: The token segment of a callback path, wherever the project mounts the URLs.
_CALLBACK_PATH = re.compile(r"(callbacks/[^/\s]+/[^/\s]+/)([^/\s?#'\"]+)")

#: The loggers that print or attach a request's path.
LOGGERS = ("django.request", "django.server", "django.security", "django.security.csrf")


#: Shorter strings are no token of ours (64 hex digits): replacing them
#: wherever they stand would only garble the text.
MIN_TOKEN_LENGTH = 16


def redact(text: str, token: str = "") -> str:
    """``text`` with the token of every callback path (and ``token`` itself,
    when given, wherever it stands) replaced by :data:`REDACTED`."""
    if len(token) >= MIN_TOKEN_LENGTH:
        text = text.replace(token, REDACTED)
    if "callbacks/" not in text:
        return text
    return _CALLBACK_PATH.sub(lambda m: m.group(1) + REDACTED, text)


def token_in_path(path: str) -> str:
    """The token of a callback path, or ``""`` for any other path."""
    match = _CALLBACK_PATH.search(path)
    return match.group(2) if match and match.group(2) != REDACTED else ""


def hide_token(request: HttpRequest, token: str) -> None:
    """Replace ``token`` in the request's path and in the WSGI environ that
    carries it (``PATH_INFO``, ``RAW_URI``...), so whatever reads the request
    later (Django's request log, error reports, middleware) sees no token."""
    # The token is a whole segment of the path (the URL pattern has no "/" in it).
    segment, hidden = f"/{token}/", f"/{REDACTED}/"
    request.path = request.path.replace(segment, hidden)
    request.path_info = request.path_info.replace(segment, hidden)
    for key, value in request.META.items():
        if isinstance(value, str) and segment in value:
            request.META[key] = value.replace(segment, hidden)


def format_exception(token: str = "") -> str:
    """The exception being handled, formatted, without ``token``: what a log
    may carry instead of ``exc_info`` (whose message could hold it)."""
    return redact(traceback.format_exc(limit=10), token)


class RedactCallbackTokens(logging.Filter):
    """Rewrites a record that carries a callback token: its message (with
    the arguments merged in), its traceback (formatted into ``exc_text``,
    ``exc_info`` dropped) and the request attached to it (dropped: error
    e-mails and reporters print its path and environ)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request: Any = getattr(record, "request", None)
        path = request.get_full_path() if isinstance(request, HttpRequest) else ""
        token = token_in_path(path)
        if token:
            record.request = None
        try:
            message = record.getMessage()
        except Exception:  # a bad format is the handler's to report
            return True
        clean = redact(message, token)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            if token or redact(text) != text:
                record.exc_text, record.exc_info = redact(text, token).rstrip("\n"), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, token)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, token)
        return True


def install() -> None:
    """Put :class:`RedactCallbackTokens` on :data:`LOGGERS` and on the
    ``django.security.<name>`` logger of every suspicious-operation class
    (Django logs each under its own name; a parent's filter does not see
    its children's records). Safe to call more than once."""
    names = {*LOGGERS, *(f"django.security.{cls.__name__}" for cls in _subclasses())}
    for name in sorted(names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCallbackTokens) for f in logger.filters):
            logger.addFilter(RedactCallbackTokens())


def _subclasses(cls: type = SuspiciousOperation) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found
