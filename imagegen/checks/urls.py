"""imagegen's URLs in the site's URLconf.

Callback URLs, the admin's progress page and the API are reversed in the
``imagegen`` namespace; without ``include("imagegen.urls")`` the first job
submitted would raise ``NoReverseMatch``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.urls import NoReverseMatch, get_script_prefix, reverse

#: Arguments that fit imagegen's status URL, to reverse it without a job.
_STATUS_KWARGS = {"job_id": uuid.UUID(int=0)}


def check() -> list[CheckMessage]:
    urlconf = getattr(settings, "ROOT_URLCONF", None)
    if urlconf:
        try:
            reverse(
                "imagegen:callback",
                kwargs={"provider": "sandbox", "job_id": uuid.UUID(int=0), "token": "t"},
            )
            return []
        except NoReverseMatch:
            pass
        except Exception:
            # A URLconf that does not load: Django's own URL check reports it.
            return []
    return [
        Error(
            f"imagegen's URLs are not in the root URLconf ({urlconf or 'ROOT_URLCONF is not set'})"
            ": callback URLs cannot be built (reverse('imagegen:callback') fails), so "
            "submitting a job would raise NoReverseMatch.",
            hint="Add path('imagegen/', include('imagegen.urls')) to its urlpatterns "
            "(from django.urls import include, path), outside any other app's namespace.",
            id="imagegen.E016",
        )
    ]


def mount_prefix() -> str | None:
    """The path imagegen's URLs are under (``"/imagegen/"``, with the script
    prefix), or None when they are not included or the URLconf does not load."""
    try:
        full = reverse("imagegen:job-status", kwargs=_STATUS_KWARGS)
    except Exception:  # NoReverseMatch is E016; a broken URLconf is Django's check's
        return None
    own = reverse("job-status", urlconf="imagegen.urls", kwargs=_STATUS_KWARGS)
    return full[: len(full) - len(own) + len(get_script_prefix())]
