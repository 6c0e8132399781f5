"""Reference images from the site's own library, sent to the provider by a signed URL.

A provider fetches image-to-image references itself (APIXO), or imagegen's
worker fetches them for it (OpenAI), from public URLs. A Wagtail site's
images usually are not public at a stable address (private storage, a
staging site, renditions made on demand), so a chosen library image is
sent as a URL of :func:`serve_reference`: the site's public origin
(``CALLBACK_BASE_URL``, else ``WAGTAILADMIN_BASE_URL``), and a token signed
with ``SECRET_KEY`` naming the image. No login is needed to fetch it, and it
answers only while a job that sends this very URL waits for its provider,
before that job's deadline (``JOB_TIMEOUT`` after it was made); anything
else is a 404 that says nothing about which image the token named.

In a job's lineage such a URL shows as the library image it names
(:func:`describe_reference`), linked to the image's page for a reader who
may edit it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from wagtail.images import get_image_model

from imagegen import conf
from imagegen.choices import IN_FLIGHT, Status
from imagegen.models import GenerationJob
from imagegen.services.runs import SiteReference, describes_references

from .permissions import image_policy

#: The salt of reference tokens: a token signed for anything else never passes.
SALT = "imagegen.contrib.wagtail.reference"
#: The payload's kind, so a token of another kind signed with this salt is refused too.
KIND = "wagtail-image"
#: The rendition sent: bounded in size for every provider, in the original's format.
REFERENCE_FILTER = "max-2048x2048"
#: The statuses in which a provider (or the worker submitting) may fetch references.
FETCHING = (Status.QUEUED, *IN_FLIGHT)
#: The public route's name (``public_urls``, included by the site's URLconf).
ROUTE = "imagegen_wagtail_public:reference"


class ReferenceBaseError(Exception):
    """The site has no public address to put in front of a reference URL."""


def token_for(image: Any) -> str:
    """A signed token naming ``image`` (a Wagtail image)."""
    return signing.dumps({"kind": KIND, "image": image.pk}, salt=SALT, compress=False)


def image_id_for(token: str) -> int | None:
    """The id of the image a token names, or None for a forged, altered or foreign token."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        return None
    image_id = payload.get("image")
    return image_id if isinstance(image_id, int) and not isinstance(image_id, bool) else None


def public_base() -> str:
    """The origin a provider reaches the site at: ``CALLBACK_BASE_URL``'s,
    else ``WAGTAILADMIN_BASE_URL``'s. Raises :class:`ReferenceBaseError`."""
    candidates = (
        conf.get_setting("CALLBACK_BASE_URL"),
        getattr(settings, "WAGTAILADMIN_BASE_URL", ""),
    )
    for value in candidates:
        parts = urlsplit(value or "")
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    raise ReferenceBaseError(
        "Library images as references need the site's public address: set "
        "IMAGEGEN['CALLBACK_BASE_URL'] or WAGTAILADMIN_BASE_URL."
    )


def routed() -> bool:
    """Whether the site's URLconf includes ``imagegen.contrib.wagtail.public_urls``."""
    try:
        reverse(ROUTE, args=["x"])
    except NoReverseMatch:
        return False
    return True


def reference_url(image: Any) -> str:
    """The signed URL a provider fetches ``image`` from. Raises
    :class:`ReferenceBaseError` without a public address, NoReverseMatch
    when the public URLs are not included."""
    return public_base() + reverse(ROUTE, args=[token_for(image)])


def describe_reference(reader: Any, token: str) -> SiteReference | None:
    """The library image a job's signed URL names, as ``reader`` may know it:
    its title, linked to its edit page if they may change it, its title
    alone if they may choose it, else only that it is a library image (and
    that it was deleted, if it was). None for a token this site did not sign."""
    image_id = image_id_for(token)
    if image_id is None:
        return None
    source = _("Image library")
    image = get_image_model().objects.filter(pk=image_id).first()
    if image is None:
        return SiteReference(_("an image since deleted"), source=source)
    policy = image_policy()

    def may(action: str) -> bool:
        return reader is not None and policy.user_has_permission_for_instance(reader, action, image)

    if may("change"):
        return SiteReference(image.title, reverse("wagtailimages:edit", args=[image.pk]), source)
    if may("choose"):
        return SiteReference(image.title, source=source)
    return SiteReference(_("an image you may not see"), source=source)


@describes_references(describe_reference)
@require_safe
@never_cache
def serve_reference(request: HttpRequest, token: str) -> HttpResponse:
    """The reference rendition of the image ``token`` names (GET and HEAD only).

    Served only while a job that sends this URL (its path, whatever the
    origin) may still be fetching it: queued or waiting on its provider, and
    before its deadline. Every refusal is the same 404.
    """
    image_id = image_id_for(token)
    if image_id is None or not _sent_by_a_waiting_job(request.path):
        raise Http404("No such reference.")
    image = get_image_model().objects.filter(pk=image_id).first()
    if image is None or image.is_svg():
        raise Http404("No such reference.")
    rendition = image.get_rendition(REFERENCE_FILTER)
    # FileResponse takes the content type from the file's name.
    response = FileResponse(rendition.file.open("rb"))
    # The provider's copy is its own business; nobody in between keeps one.
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


def _sent_by_a_waiting_job(path: str) -> bool:
    waiting = GenerationJob.objects.filter(
        status__in=FETCHING, deadline_at__gt=timezone.now(), reference_urls__icontains=path
    ).values_list("reference_urls", flat=True)
    # The text match narrows; the exact path of one listed URL decides.
    return any(urlsplit(url).path == path for urls in waiting for url in urls)
