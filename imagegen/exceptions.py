"""The errors imagegen raises.

Runtime failures form one family under :class:`ImagegenError`. Configuration
mistakes subclass Django's ``ImproperlyConfigured`` instead, so that a broad
``except ImagegenError`` never hides a broken setup.

Messages never contain API keys or callback tokens: every class here builds
its text from the fields it is given, and callers pass no secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from . import failures


class ImagegenConfigurationError(ImproperlyConfigured):
    """A setting is missing or wrong; the message names the setting to fix."""


class ImagegenError(Exception):
    """Base class of every runtime error raised by imagegen."""


class ProviderError(ImagegenError):
    """The provider refused a request or could not be reached.

    ``code`` is the provider's own error code (an HTTP status such as ``"429"``
    or a task ``failCode`` such as ``"CONTENT_VIOLATION"``) or imagegen's name
    for what went wrong (``"CONNECT_FAILED"``); ``params`` are the values its
    message is made with (:mod:`imagegen.failures`): the job records both and
    renders the message in each reader's language. ``message`` is that text
    in ``settings.LANGUAGE_CODE``, made from them when not given (a provider
    that passes only a message has it shown as it is).
    """

    retryable = False

    def __init__(
        self,
        message: str = "",
        *,
        code: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
        provider: str = "",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.params = failures.clean_params(params or {})
        if not message:
            message = failures.site_text(code, self.params, code or type(self).__name__)
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.retry_after = retry_after
        self.provider = provider

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"(code {self.code})")
        if self.provider:
            parts.append(f"[provider {self.provider}]")
        return " ".join(parts)

    def text(self) -> str:
        """The message in the active language (a page showing the error
        now, to whoever asked)."""
        return failures.render_failure(self.code, self.params, self.message)

    def failure(self, default_code: str) -> tuple[str, dict[str, Any]]:
        """The code and parameters a job records for this error;
        ``default_code`` (whose message shows this one's text as the
        provider's detail) when it has no code of its own."""
        if self.code:
            return self.code, dict(self.params)
        return default_code, {failures.DETAIL: self.message}


class TransientError(ProviderError):
    """A failure worth retrying: network errors, timeouts, 429 and 5xx."""

    retryable = True


class PermanentError(ProviderError):
    """A failure that retrying cannot fix: bad request, bad key, no credit,
    content policy. The job fails with this message."""


class OutcomeUnknownError(TransientError):
    """The request may have reached the provider but no answer came back.

    For a submission this means the provider may have accepted (and charged)
    the task. Callers must not resubmit blindly.
    """


class MalformedCallbackError(ImagegenError):
    """A callback body cannot be parsed into a task state (answered with 400)."""


class FetchError(ImagegenError):
    """Downloading a result or reference image failed.

    ``retryable`` tells whether trying again later may succeed (a timeout, a
    5xx, a DNS failure) or not (a refused address, a file over the size cap).
    """

    def __init__(self, message: str, *, retryable: bool = False, url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.url = url


class UnsafeURLError(FetchError):
    """The URL points somewhere imagegen must not connect to (scheme, port,
    host outside the allowlist, private or reserved address)."""


class DownloadTooLargeError(FetchError):
    """The response is larger than ``IMAGEGEN["MAX_DOWNLOAD_BYTES"]``."""


class ImageRejectedError(ImagegenError):
    """A downloaded file is not an acceptable image (wrong format, truncated,
    decompression bomb, type mismatch)."""
