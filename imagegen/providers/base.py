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

from ..choices import AspectRatio, Mode, Resolution, TaskStatus
from ..exceptions import OutcomeUnknownError, PermanentError, TransientError

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
    registry; providers never read Django settings themselves.

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

    def request(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        """Send a request and map transport failures and HTTP errors.

        ``idempotent=False`` marks requests that may have taken effect even
        when no answer came back (a submission): a timeout after sending then
        raises :class:`OutcomeUnknownError` rather than a plain transient error.
        """
        headers = {"Accept": "application/json", **self.auth_headers(), **kwargs.pop("headers", {})}
        try:
            response = self.client.request(
                method, f"{self.base_url}{path}", headers=headers, **kwargs
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransientError(
                f"Could not connect to {self.name}: {type(exc).__name__}", provider=self.name
            ) from None
        except httpx.TransportError as exc:
            error = TransientError if idempotent else OutcomeUnknownError
            raise error(
                f"No answer from {self.name}: {type(exc).__name__}", provider=self.name
            ) from None
        if response.status_code >= 400:
            raise self.http_error(response)
        return response

    def http_error(self, response: httpx.Response) -> TransientError | PermanentError:
        """Build the error for an HTTP failure; subclasses refine the message."""
        status = response.status_code
        message = self.error_message(response) or response.reason_phrase or "HTTP error"
        error = TransientError if status in RETRYABLE_STATUSES else PermanentError
        return error(
            message,
            code=str(status),
            status_code=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            provider=self.name,
        )

    def error_message(self, response: httpx.Response) -> str:
        """The provider's own explanation of an HTTP error, if it sent one."""
        return ""


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
