"""The describer interface: drafts of alt text and of prompts, for editors to confirm.

A describer never decides anything on its own: what it returns is stored as
a draft (:mod:`imagegen.services.alt_text`) or shown in a form
(:mod:`imagegen.services.prompt_drafts`), and only an editor's confirmation
makes it the image's alt text or the prompt of a paid generation.
"""

from __future__ import annotations

import abc
from typing import Any

from ..exceptions import ImagegenConfigurationError

#: Longest alt text a draft may have: ``GeneratedImage.alt_text``'s length.
MAX_ALT_TEXT = 500
#: Longest prompt a draft may have (the provider's own limit may be lower:
#: :func:`imagegen.services.prompt_drafts.draft_prompt` cuts to it).
MAX_PROMPT = 4000


class DescriberError(Exception):
    """A draft could not be made (message safe to show; no secrets).

    ``temporary`` says whether trying again later may succeed (a timeout, a
    rate limit, a server error); ``retry_after`` is the wait the service
    asked for, in seconds, when it gave one.
    """

    def __init__(
        self, message: str, *, temporary: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.temporary = temporary
        self.retry_after = retry_after


class Describer(abc.ABC):
    """Drafts text about images and content for editors to confirm (never applied unseen).

    Options come from ``IMAGEGEN["DESCRIBER"]["OPTIONS"]`` (upper-case keys);
    a subclass lists the ones it reads in :attr:`option_names`, and any other
    key is refused with :class:`ImagegenConfigurationError` (system check
    ``imagegen.E036``), so a typo is never silently ignored.
    """

    #: A short name for logs and messages.
    name: str = "describer"
    #: Options this class reads.
    option_names: frozenset[str] = frozenset()

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.option_names)
        if unknown:
            known = ", ".join(sorted(self.option_names)) or "none"
            raise ImagegenConfigurationError(
                f"IMAGEGEN['DESCRIBER']['OPTIONS'] has keys {type(self).__name__} does not "
                f"read: {', '.join(sorted(map(str, unknown)))} (its options: {known})."
            )
        self.options = dict(options)

    def option(self, name: str, default: Any = None) -> Any:
        """The value of option ``name`` (one of :attr:`option_names`), else ``default``."""
        value = self.options.get(name)
        return default if value is None else value

    @abc.abstractmethod
    def describe(self, image: bytes, content_type: str, *, language: str, context: str = "") -> str:
        """Alt text for ``image`` in ``language`` (a Django language code), <= 500 chars.

        ``context`` is what is known about the image besides its pixels (the
        prompt it was generated from). Raises :class:`DescriberError`.
        """

    @abc.abstractmethod
    def draft_prompt(self, text: str, *, language: str, field_label: str = "") -> str:
        """An image-generation prompt drafted from an object's ``text`` for an image field.

        Raises :class:`DescriberError`.
        """
