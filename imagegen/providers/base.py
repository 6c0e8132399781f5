"""The provider interface and the HTTP machinery every provider shares.

A provider module holds only what differs between providers: request
building and response parsing. This module owns the HTTP client (timeouts,
no proxies from the environment), the mapping of HTTP failures onto
:class:`TransientError` / :class:`PermanentError`, and the data classes that
cross the boundary between providers and the service layer.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from .. import conf, failures, jsonparse
from ..choices import AspectRatio, Mode, Resolution, TaskStatus
from ..exceptions import (
    MalformedCallbackError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)

#: HTTP statuses worth retrying. Anything not listed is permanent: an unknown
#: failure must not burn money in a retry loop.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Capabilities:
    """What a provider (and model) accepts, and how long it usually takes."""

    modes: tuple[str, ...] = tuple(Mode.values)
    resolutions: tuple[str, ...] = tuple(Resolution.values)
    aspect_ratios: tuple[str, ...] = tuple(AspectRatio.values)
    max_references: int = 16
    max_prompt_length: int = 20000
    supports_callback: bool = True
    #: Typical (low, high) latency in seconds per resolution.
    latency: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {"1k": (30.0, 120.0), "2k": (60.0, 180.0), "4k": (120.0, 240.0)}
    )


@dataclass(frozen=True)
class GenerationRequest:
    """One job as a provider sees it: plain values, no model instances."""

    mode: str
    prompt: str
    resolution: str
    aspect_ratio: str
    image_urls: tuple[str, ...] = ()
    callback_url: str | None = None
    #: A private folder for this submission's temporary files (reference
    #: images a provider downloads), removed by imagegen when the attempt
    #: ends or, after a killed worker, by the sweep; None: the temp dir.
    work_dir: str | None = None


@dataclass(frozen=True)
class Output:
    """One result image: a URL to download, or the bytes themselves."""

    url: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class TaskState:
    """A provider task's state, normalised."""

    task_id: str
    status: str  # a TaskStatus value
    outputs: tuple[Output, ...] = ()
    error_code: str = ""
    error_message: str = ""
    #: The values the failure's message is made with (:mod:`imagegen.failures`).
    error_params: Mapping[str, Any] = field(default_factory=dict)
    created_at_ms: int | None = None
    completed_at_ms: int | None = None
    cost_time_ms: int | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in (TaskStatus.SUCCESS, TaskStatus.FAILED)


@dataclass(frozen=True)
class Submission:
    """What ``submit`` returns: the provider's task id, and for synchronous
    providers the finished state as well."""

    task_id: str
    result: TaskState | None = None


@dataclass(frozen=True)
class AccountStatus:
    """What one cheap authenticated request told: the provider answers and
    accepts the key; the account's balance, when the provider reports one."""

    balance: Decimal | None = None
    currency: str = ""


class Provider:
    """Base class of every provider.

    A subclass sets :attr:`capabilities` and implements :meth:`submit`,
    :meth:`fetch` and :meth:`parse_callback`. Options come from
    ``IMAGEGEN["PROVIDERS"][name]`` (upper-case keys) and are passed in by the
    registry; providers never read Django settings themselves (the bounds on
    what they parse, ``MAX_CALLBACK_BYTES``, ``MAX_JSON_DEPTH`` and
    ``MAX_RESULT_URLS``, are applied by this module's helpers).

    Each class in the hierarchy lists the options it reads itself in
    :attr:`option_names`; the system check ``imagegen.E021`` reports any
    other key as a typo (see :meth:`known_options`).
    """

    capabilities = Capabilities()
    #: Options this class reads (``CLASS`` and ``SANDBOX`` are the registry's
    #: and the system checks'); subclasses list only their own.
    option_names: frozenset[str] = frozenset(
        {
            "CLASS",
            "SANDBOX",
            "MODEL",
            "LATENCY",
            "TIMEOUT",
            "ALLOWED_RESULT_HOSTS",
            "ALLOW_PRIVATE_HOSTS",
        }
    )

    @classmethod
    def known_options(cls) -> frozenset[str] | None:
        """Every option this provider reads: the :attr:`option_names` of each
        class in its hierarchy. None when a class does not declare its own
        (a provider written before the declaration existed): its options
        cannot be told from typos, so none are reported."""
        names: set[str] = set()
        for klass in cls.__mro__:
            if not (isinstance(klass, type) and issubclass(klass, Provider)):
                continue
            if "option_names" not in vars(klass):
                return None
            names |= klass.option_names
        return frozenset(names)

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = dict(options)
        self.model: str = self.options.get("MODEL", "")

    def submit(self, request: GenerationRequest) -> Submission:
        """Start a task. Raises :class:`ProviderError` subclasses."""
        raise NotImplementedError

    def fetch(self, task_id: str) -> TaskState:
        """Return the current state of a task."""
        raise NotImplementedError

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskState:
        """Parse a callback body. Raises :class:`MalformedCallbackError`."""
        raise NotImplementedError

    def account_status(self, timeout: float | None = None) -> AccountStatus | None:
        """One cheap authenticated request, for ``manage.py imagegen doctor``
        (never on the hot path): raises :class:`ProviderError` when the
        provider cannot be reached or refuses the key (a
        :class:`PermanentError` with ``status_code`` 401). None: this provider
        has no such request."""
        return None

    def submit_seconds(self, references: int) -> float:
        """The longest a :meth:`submit` with ``references`` reference images
        may take; the submitting worker's lease on the job outlasts it, so no
        other worker submits the job again while this one may still succeed."""
        return float(self.options.get("TIMEOUT", 30.0))

    def latency(self, resolution: str) -> tuple[float, float]:
        """Typical (low, high) latency in seconds; ``LATENCY`` option overrides."""
        override = self.options.get("LATENCY") or {}
        low, high = override.get(resolution) or self.capabilities.latency.get(
            resolution, (30.0, 240.0)
        )
        return float(low), float(high)

    @property
    def allowed_result_hosts(self) -> tuple[str, ...] | None:
        hosts = self.options.get("ALLOWED_RESULT_HOSTS", ())
        return None if hosts is None else tuple(hosts)

    @property
    def allow_private_hosts(self) -> bool:
        return bool(self.options.get("ALLOW_PRIVATE_HOSTS", False))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} model={self.model!r}>"


class HTTPProvider(Provider):
    """A provider reached over HTTP with a bearer key.

    The client never reads proxies or netrc from the environment
    (``trust_env=False``) and always has connect and read timeouts.
    """

    option_names = frozenset({"BASE_URL", "API_KEY"})

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.base_url = str(self.options.get("BASE_URL") or "").rstrip("/")
        timeout = float(self.options.get("TIMEOUT", 30.0))
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self._timeout, trust_env=False, follow_redirects=False
            )
        return self._client

    def auth_headers(self) -> dict[str, str]:
        key = self.options.get("API_KEY") or ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def answer_limit(self) -> int:
        """The largest answer body read, in bytes: ``MAX_CALLBACK_BYTES``, as a
        status answer has the shape of a callback. A provider whose answers
        carry images raises it."""
        return int(conf.get_setting("MAX_CALLBACK_BYTES"))

    def request(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        """Send a request and map transport failures and HTTP errors.

        ``idempotent=False`` marks requests that may have taken effect even
        when no answer came back (a submission): a timeout after sending then
        raises :class:`OutcomeUnknownError` rather than a plain transient error.

        The answer is streamed and read up to :meth:`answer_limit` bytes
        (decoded; identity encoding is asked for, so a small compressed body
        cannot expand in memory): a successful answer over it is a
        :class:`PermanentError` ``ANSWER_TOO_LARGE`` (asking again would get
        the same answer), an error answer over it keeps its status without
        its body.
        """
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            **self.auth_headers(),
            **kwargs.pop("headers", {}),
        }
        limit = self.answer_limit()
        try:
            sent = self.client.build_request(
                method, f"{self.base_url}{path}", headers=headers, **kwargs
            )
            streamed = self.client.send(sent, stream=True)
            try:
                body = read_capped(streamed, limit)
            finally:
                streamed.close()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransientError(
                code="CONNECT_FAILED",
                params={"provider": self.name, "error": type(exc).__name__},
                provider=self.name,
            ) from None
        except httpx.TransportError as exc:
            error = TransientError if idempotent else OutcomeUnknownError
            raise error(
                code="NO_ANSWER",
                params={"provider": self.name, "error": type(exc).__name__},
                provider=self.name,
            ) from None
        # A plain response again (no content decoding: the body is decoded).
        response = httpx.Response(
            streamed.status_code,
            headers=[(k, v) for k, v in streamed.headers.multi_items() if k != "content-encoding"],
            content=body or b"",
            request=sent,
        )
        if response.status_code >= 400:
            raise self.http_error(response)
        if body is None:
            raise PermanentError(
                code="ANSWER_TOO_LARGE",
                params={"provider": self.name, "limit": limit},
                status_code=response.status_code,
                provider=self.name,
            )
        return response

    #: The prefix of the catalog keys (:mod:`imagegen.failures`) of the
    #: messages for HTTP statuses: ``HTTP_429``... A status without one
    #: gets ``HTTP_ERROR``, which names it.
    http_messages = "HTTP_"

    def http_error(self, response: httpx.Response) -> TransientError | PermanentError:
        """Build the error for an HTTP failure: code the status, message the
        catalog's for it, the provider's own explanation as its detail."""
        status = response.status_code
        detail = self.error_message(response)
        template = f"{self.http_messages}{status}"
        params: dict[str, Any] = {"template": template, "detail": detail or None}
        if template not in failures.CATALOG:
            params.update(template="HTTP_ERROR", status=status)
            params["detail"] = detail or response.reason_phrase or None
        error = TransientError if status in RETRYABLE_STATUSES else PermanentError
        return error(
            code=str(status),
            status_code=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            provider=self.name,
            params=params,
        )

    def error_message(self, response: httpx.Response) -> str:
        """The provider's own explanation of an HTTP error, if it sent one."""
        return ""


class UnusableAnswer(MalformedCallbackError):
    """A provider answer over one of imagegen's bounds (JSON nested deeper
    than ``MAX_JSON_DEPTH``, more results than ``MAX_RESULT_URLS``) or naming
    one result twice. Unlike a garbled answer it is final: asking again gets
    the same. A callback carrying one is refused (400) like any malformed
    callback; a status answer fails the job."""


def read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The (decoded) body of a streamed ``response``, or None when it is over
    ``limit`` bytes (declared or read); never more than about ``limit`` plus
    one network chunk is held."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes | str, what: str) -> Any:
    """``raw`` parsed by :func:`imagegen.jsonparse.loads`; ``what`` names it in
    the errors: :class:`UnusableAnswer` when it nests too deep, else
    :class:`MalformedCallbackError`."""
    try:
        return jsonparse.loads(raw)
    except jsonparse.NestedTooDeep as exc:
        raise UnusableAnswer(f"{what} is {exc}.") from None
    except jsonparse.MalformedJSON as exc:
        raise MalformedCallbackError(f"{what} is {exc}.") from None


def check_result_count(count: int) -> None:
    """Raise :class:`UnusableAnswer` when one answer carries more than
    ``MAX_RESULT_URLS`` results (whatever they are: checked first, so a huge
    list is refused for its length)."""
    limit = int(conf.get_setting("MAX_RESULT_URLS"))
    if count > limit:
        raise UnusableAnswer(
            f"The answer carries {count} results; at most {limit} are accepted "
            "(IMAGEGEN['MAX_RESULT_URLS'])."
        )


def check_result_urls(urls: list[Any]) -> list[str]:
    """``urls`` when it is a list of at most ``MAX_RESULT_URLS`` distinct,
    non-empty strings. Raises :class:`UnusableAnswer` (too many, a URL
    twice: nothing is downloaded, not even once) or
    :class:`MalformedCallbackError` (not a list of strings)."""
    if not isinstance(urls, list):
        raise MalformedCallbackError("The result URLs must be a list.")
    check_result_count(len(urls))
    if not all(isinstance(url, str) and url for url in urls):
        raise MalformedCallbackError("Every result URL must be a non-empty string.")
    if len(set(urls)) != len(urls):
        raise UnusableAnswer("The answer names the same result URL more than once.")
    return urls


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
