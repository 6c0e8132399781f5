"""Why a job failed (or waits), as a code and parameters rendered when shown.

A job records ``error_code`` (what happened, for programs: a provider's
code such as ``"429"`` or ``"CONTENT_VIOLATION"``, or imagegen's own such
as ``"EXPIRED"``), ``error_params`` (the values its message is made with)
and ``error_message`` (that message rendered in ``settings.LANGUAGE_CODE``
when it was recorded: for logs, search and readers that know no better).
Every display renders the message again, in the reader's language, with
:func:`render_failure` (through ``GenerationJob.error_text``).

:data:`CATALOG` maps each message's key to its template. The key is the
error code, unless the parameters name another under ``"template"`` (one
code can be told in several ways: a ``"503"`` that made the job wait, or
the last of the attempts that made it fail). Parameters are JSON
primitives (str, int, float, bool), never secrets; three names have a
meaning of their own:

``template``
    The catalog key, when it is not the code.
``cause``
    The key of the failure that led to this one (the last attempt's);
    rendered with the same parameters and appended: "The last attempt
    failed: ...".
``detail``
    The provider's own words (a moderation reason, an error text), shown
    as received in parentheses after the message: never translated.
``count``
    The number that picks a plural form, in plural messages whose other
    numbers do not (a message with one number picks by it: ``attempts``,
    ``cap``, ``limit``).

A code the catalog does not know (a third-party provider's) or parameters
that do not fit the template (a row recorded before codes had parameters,
a template changed since) render as the stored ``error_message``:
rendering never raises.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, override

logger = logging.getLogger("imagegen")

#: Parameter names with a meaning of their own (see the module's docstring).
TEMPLATE, CAUSE, DETAIL, COUNT = "template", "cause", "detail", "count"
#: The longest a text parameter is kept (a provider's detail, a reason).
MAX_PARAM_LENGTH = 500

CATALOG: dict[str, Any] = {
    # --- imagegen's own --------------------------------------------------
    "WAITING_FOR_SLOT": ngettext_lazy(
        "Waiting for a free slot: %(provider)s takes %(cap)d job at once.",
        "Waiting for a free slot: %(provider)s takes %(cap)d jobs at once.",
        "cap",
    ),
    "SUBMIT_UNCERTAIN": _("No answer came from the provider; it may have started the task."),
    "WORKER_STOPPED": _("The worker submitting the job stopped before the provider answered."),
    "PROVIDER_ERROR": _("The provider answered with an error."),
    "SUBMIT_FAILED": ngettext_lazy(
        "Submission failed after %(attempts)d attempt.",
        "Submission failed after %(attempts)d attempts.",
        "attempts",
    ),
    "SUBMIT_REFUSED": _("The provider refused the job."),
    "SUBMIT_ANSWERS_LOST": ngettext_lazy(
        "Gave up after %(attempts)d submission attempts: the provider's answer was lost "
        "%(count)d time. The provider may have started (and charged for) a task then; it "
        "counts against the budgets.",
        "Gave up after %(attempts)d submission attempts: the provider's answers were lost "
        "%(count)d times. The provider may have started (and charged for) a task each time; "
        "each counts against the budgets.",
        COUNT,
    ),
    "EXPIRED": _("The provider did not finish before the deadline."),
    "EXPIRED_ANSWERS_LOST": ngettext_lazy(
        "The deadline passed before the provider confirmed the job: its answer was lost "
        "%(count)d time. The provider may have started (and charged for) a task then; it "
        "counts against the budgets.",
        "The deadline passed before the provider confirmed the job: its answers were lost "
        "%(count)d times. The provider may have started (and charged for) a task each time; "
        "each counts against the budgets.",
        COUNT,
    ),
    "POLL_FAILED": _("The provider could not report the job's state."),
    "TASK_UNKNOWN": _("The provider no longer knows this task."),
    "FAILED": _("The provider reported a failure."),
    "PROVIDER_FAILURE": _("The provider reported the failure %(fail_code)s."),
    "STORE_FAILED": _("The results could not be stored after several attempts."),
    "RESULTS_LOST": _("The images were lost before they could be stored; retry the job."),
    "NO_RESULTS": _("The provider reported success but sent no images."),
    "BAD_RESULT": _("The result could not be used: %(reason)s"),
    # --- any HTTP provider (imagegen.providers.base) ----------------------
    "CONNECT_FAILED": _("Could not connect to %(provider)s: %(error)s"),
    "NO_ANSWER": _("No answer from %(provider)s: %(error)s"),
    "ANSWER_TOO_LARGE": ngettext_lazy(
        "The answer from %(provider)s is larger than %(limit)d byte.",
        "The answer from %(provider)s is larger than %(limit)d bytes.",
        "limit",
    ),
    "HTTP_ERROR": _("The provider answered with HTTP status %(status)d."),
    "HTTP_400": _("The provider rejected the request as invalid."),
    "HTTP_401": _("The provider rejected the API key. Check IMAGEGEN['PROVIDERS'] API_KEY."),
    "HTTP_402": _("The provider account has insufficient balance."),
    "HTTP_403": _("The request was refused by the provider's content policy."),
    "HTTP_404": _("The provider does not know this model or task."),
    "HTTP_429": _("The provider is rate limiting requests."),
    "HTTP_500": _("The provider had an internal error."),
    "HTTP_503": _("The provider is temporarily unavailable."),
    # --- APIXO (imagegen.providers.apixo): its task failure codes ---------
    "CONTENT_VIOLATION": _("The prompt or a reference image was refused by the content policy."),
    "NSFW_DETECTED": _("The provider detected unsafe content and refused the request."),
    "SensitiveContentDetected": _("The provider detected sensitive content and refused it."),
    "PROMPT_TOO_LONG": _("The prompt is too long for this model."),
    "INVALID_PROMPT": _("The provider could not use this prompt."),
    "INVALID_IMAGE_URL": _("A reference image URL is invalid or not reachable by the provider."),
    "IMAGE_TOO_LARGE": _("A reference image is too large."),
    "UNSUPPORTED_FORMAT": _("A reference image is in an unsupported format."),
    "IMAGE_DOWNLOAD_FAILED": _("The provider could not download a reference image."),
    "PROCESSING_TIMEOUT": _("The provider took too long and gave up. Try again."),
    "MODEL_UNAVAILABLE": _("The model is temporarily unavailable. Try again later."),
    "GENERATION_FAILED": _("The provider failed to generate the image. Try again."),
    "INSUFFICIENT_CREDITS": _("The provider account has run out of credit."),
    "MALFORMED_ANSWER": _("The provider's status answer cannot be used: %(reason)s"),
    "UNREADABLE_ANSWER": _("The provider's status answer could not be read: %(reason)s"),
    "NOT_JSON": _("The provider answered with something that is not JSON."),
    "NO_ENVELOPE": _("The provider's answer has no envelope."),
    "NO_TASK_ID": _("The provider accepted the request but sent no task id."),
    "BALANCE_NOT_NUMBER": _("The provider's balance answer is not a number."),
    # --- OpenAI (imagegen.providers.openai) --------------------------------
    "OPENAI_HTTP_400": _("OpenAI rejected the request as invalid."),
    "OPENAI_HTTP_401": _(
        "OpenAI rejected the API key. Check IMAGEGEN['PROVIDERS'][%(provider)r]['API_KEY']."
    ),
    "OPENAI_HTTP_403": _("OpenAI refused access to this model or organisation."),
    "OPENAI_HTTP_404": _("OpenAI does not know this model or endpoint."),
    "OPENAI_HTTP_413": _("The request is too large for OpenAI (reference images too big)."),
    "OPENAI_HTTP_429": _("OpenAI is rate limiting requests."),
    "OPENAI_HTTP_500": _("OpenAI had an internal error."),
    "OPENAI_HTTP_502": _("OpenAI is temporarily unreachable."),
    "OPENAI_HTTP_503": _("OpenAI is temporarily unavailable."),
    "MODERATION": _(
        "OpenAI's safety system refused the request. Rephrase the prompt or use other "
        "reference images."
    ),
    "OPENAI_QUOTA": _("The OpenAI account has run out of credit or hit its billing limit."),
    "SYNCHRONOUS": _("This provider answers synchronously; there is nothing to poll."),
    "NO_REFERENCES": _("Image-to-image needs at least one reference image."),
    "REFERENCE_DOWNLOAD": _("Reference image %(number)d could not be downloaded: %(reason)s"),
    "REFERENCE_UNUSABLE": _("Reference image %(number)d cannot be used: %(reason)s"),
    "INVALID_RESPONSE": _("OpenAI's answer cannot be used: %(reason)s"),
}

_WITH_DETAIL = _("%(message)s (%(detail)s)")
_WITH_CAUSE = _("%(message)s The last attempt failed: %(cause)s")
_PRIMITIVES = (str, int, float, bool)


def render_failure(code: str, params: Any, fallback: str = "") -> str:
    """The message of failure ``code`` with ``params``, in the active language.

    ``fallback`` (the stored ``error_message``) when the code has no
    template, or the parameters do not fit it (missing, extra or
    non-primitive values, a wrong type, not a dict); never raises.
    """
    if not code or not isinstance(params, Mapping):
        return fallback
    try:
        return _render(code, params)
    except Exception:
        # A row written by another version, a translation with a broken
        # placeholder: the text stored when it was recorded still says it.
        logger.debug("Failure %r with %r rendered from its stored text.", code, params)
        return fallback


def site_text(code: str, params: Mapping[str, Any], fallback: str = "") -> str:
    """:func:`render_failure` in ``settings.LANGUAGE_CODE``: the
    ``error_message`` stored with a failure, and the text of webhooks."""
    with override(settings.LANGUAGE_CODE):
        return render_failure(code, params, fallback)


def clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as they are stored: JSON primitives, text cut to
    :data:`MAX_PARAM_LENGTH`, None left out (lazy text and other objects
    become text in ``settings.LANGUAGE_CODE``)."""
    cleaned: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, Promise) or not isinstance(value, _PRIMITIVES):
            with override(settings.LANGUAGE_CODE):
                value = str(value)
        if isinstance(value, str):
            value = value[:MAX_PARAM_LENGTH]
        cleaned[str(name)] = value
    return cleaned


def failure_fields(
    code: str, params: Mapping[str, Any] | None = None, message: str = ""
) -> dict[str, Any]:
    """The job fields that record failure ``code``: ``error_code``,
    ``error_params`` and ``error_message`` (the text in
    ``settings.LANGUAGE_CODE``; ``message`` when the failure cannot be
    rendered, as for a third-party provider's own code)."""
    cleaned = clean_params(params or {})
    return {
        "error_code": str(code)[:64],
        "error_params": cleaned,
        "error_message": site_text(code, cleaned, str(message))[:2000],
    }


#: The fields of a job that has no failure (any more).
NO_FAILURE: dict[str, Any] = {"error_code": "", "error_params": {}, "error_message": ""}


def template_key(code: str, params: Mapping[str, Any]) -> str:
    """The catalog key a failure renders with."""
    return str(params.get(TEMPLATE) or code)


def _render(code: str, params: Mapping[str, Any]) -> str:
    key = template_key(code, params)
    cause = params.get(CAUSE)
    detail = params.get(DETAIL)
    expected = parameters(key) | (parameters(cause) if cause else frozenset())
    given = set(params) - {TEMPLATE, CAUSE, DETAIL}
    if given != expected:
        raise ValueError(f"parameters {sorted(given)} for {sorted(expected)}")
    if not all(isinstance(value, _PRIMITIVES) for value in params.values()):
        raise TypeError("parameters must be JSON primitives")
    # A plural message (ngettext_lazy) returns its template unformatted when a value
    # does not fit: every integer placeholder, the count among them, takes an integer.
    integers = integer_parameters(key) | (integer_parameters(cause) if cause else frozenset())
    if any(
        isinstance(params[name], bool) or not isinstance(params[name], int) for name in integers
    ):
        raise TypeError("an integer placeholder takes an integer")
    if detail is not None and not isinstance(detail, str):
        raise TypeError("the detail must be text")
    values = {name: params[name] for name in expected}
    text = _format(key, values)
    if cause:
        text = str(_WITH_CAUSE) % {"message": text, "cause": _format(cause, values)}
    if detail:
        text = str(_WITH_DETAIL) % {"message": text, "detail": detail}
    return text


def _format(key: str, values: Mapping[str, Any]) -> str:
    template = CATALOG[key]
    if parameters(key):
        return str(template % values)
    # Not %-formatted (a translation may write a literal "%"), but a
    # placeholder the message has no value for is a broken translation.
    text = str(template)
    if "%(" in text:
        raise KeyError(f"{key!r} has a placeholder in this language")
    return text


class _Sample(int):
    """1, noting when a template shows it as text (%s, %r), not as an integer (%d)."""

    def __new__(cls, name: str, as_text: set[str]) -> _Sample:
        sample = super().__new__(cls, 1)
        sample.name, sample.as_text = name, as_text
        return sample

    def __str__(self) -> str:
        self.as_text.add(self.name)
        return "1"

    __repr__ = __str__


class _Recorder(dict):
    """Formats any template, noting which names it asks for and which of them
    it shows as text."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()
        self.as_text: set[str] = set()

    def __getitem__(self, name: str) -> int:
        self.asked.add(name)
        return _Sample(name, self.as_text)


@functools.cache
def _recorded(key: str) -> _Recorder:
    recorder = _Recorder()
    with override(None):
        str(CATALOG[key] % recorder)
    return recorder


def parameters(key: str) -> frozenset[str]:
    """The parameter names the template of catalog ``key`` uses (its
    English msgid's, whatever the translations say); KeyError for a key
    the catalog does not hold."""
    return frozenset(_recorded(key).asked)


def integer_parameters(key: str) -> frozenset[str]:
    """The names among :func:`parameters` that are integer placeholders
    (``%(name)d``): the count of a plural message among them."""
    recorder = _recorded(key)
    return frozenset(recorder.asked - recorder.as_text)
