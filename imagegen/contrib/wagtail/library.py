"""The Wagtail form's reference picker: images from the site's image library
and imagegen's own results, as one field.

Each choice is ``"image:<id>"`` (a Wagtail image the editor may choose, sent
by a signed URL: :mod:`.references`) or ``"result:<id>"`` (an imagegen
``GeneratedImage`` the editor may see, sent as the job's reference image).
The field keeps the admin form's name, ``reference_images``, so the admin's
script counts the chosen ones with the URLs against the provider's limit.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.urls import NoReverseMatch
from django.utils.translation import gettext_lazy as _

from imagegen import permissions as job_permissions
from imagegen.models import GeneratedImage

from .permissions import image_policy
from .references import ReferenceBaseError, image_id_for, reference_url

#: How many recent images of each kind the picker shows besides the chosen ones.
RECENT = 24
#: The thumbnail rendition of a library image in the picker.
THUMBNAIL_FILTER = "max-165x165"

IMAGE, RESULT = "image", "result"


class Picked(list):
    """The picked imagegen results (a list, as the admin form's field gives),
    with the picked library images in :attr:`library`."""

    def __init__(self, results: list[GeneratedImage], library: list[Any]) -> None:
        super().__init__(results)
        self.library = library


def library_images(user: Any) -> QuerySet:
    """The Wagtail images ``user`` may choose, newest first (SVGs cannot be references)."""
    images = image_policy().instances_user_has_permission_for(user, "choose")
    return images.exclude(file__iendswith=".svg").order_by("-created_at", "-pk")


def result_images(user: Any) -> QuerySet[GeneratedImage]:
    """imagegen's results ``user`` may see that still have a file, newest first."""
    return job_permissions.visible_images(user).exclude(file="").order_by("-pk")


class LibraryReferencesWidget(forms.CheckboxSelectMultiple):
    """Thumbnails with checkboxes; the field sets :attr:`items`."""

    template_name = "imagegen_wagtail/widgets/library_references.html"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.items: list[dict[str, Any]] = []

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        selected = set(self.format_value(value))
        context["widget"]["items"] = [
            {**item, "checked": item["value"] in selected} for item in self.items
        ]
        return context


class LibraryReferencesField(forms.MultipleChoiceField):
    """Library images and imagegen results as references; cleans to :class:`Picked`."""

    widget = LibraryReferencesWidget

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)
        self._library: QuerySet = GeneratedImage.objects.none()
        self._results: QuerySet = GeneratedImage.objects.none()

    def offer(self, user: Any, chosen: list[str]) -> None:
        """Offer ``user``'s recent library images and results, and the ``chosen`` ones."""
        library = library_images(user)
        results = result_images(user)
        chosen_ids = {kind: _ids(chosen, kind) for kind in (IMAGE, RESULT)}
        items = [
            {
                "value": f"{IMAGE}:{image.pk}",
                "label": image.title,
                "thumbnail_url": image.get_rendition(THUMBNAIL_FILTER).url,
            }
            for image in _offer(library, chosen_ids[IMAGE])
        ] + [
            {
                "value": f"{RESULT}:{image.pk}",
                "label": image.alt_text or image.job.prompt,
                "thumbnail_url": image.thumbnail_url,
            }
            for image in _offer(results, chosen_ids[RESULT])
        ]
        self.widget.items = items
        # Validation checks against everything the user may use, not only what is shown.
        self.choices = [(item["value"], item["label"]) for item in items]
        self._library, self._results = library, results

    def valid_value(self, value: str) -> bool:
        kind, _sep, pk = str(value).partition(":")
        if not pk.isdigit():
            return False
        queryset = {IMAGE: self._library, RESULT: self._results}.get(kind)
        return queryset is not None and queryset.filter(pk=int(pk)).exists()

    def clean(self, value: Any) -> Picked:
        values = super().clean(value)
        picked = Picked(
            results=list(self._results.filter(pk__in=_ids(values, RESULT))),
            library=list(self._library.filter(pk__in=_ids(values, IMAGE))),
        )
        if picked.library:
            try:
                reference_url(picked.library[0])
            except (ReferenceBaseError, NoReverseMatch):
                raise ValidationError(
                    _(
                        "Library images cannot be sent to the provider yet: the site needs "
                        "its public address (CALLBACK_BASE_URL) and the URLs of "
                        "imagegen.contrib.wagtail.public_urls. Ask an administrator."
                    ),
                    code="no_public_url",
                ) from None
        return picked


def initial_references(
    urls: list[str], results: list[GeneratedImage]
) -> tuple[list[str], list[str]]:
    """A job's references as the form's initial values: (picker values, other URLs).

    Signed URLs of library images become picks again, so generating again
    signs them anew; any other URL stays a URL.
    """
    picks = [f"{RESULT}:{image.pk}" for image in results]
    others = []
    for url in urls:
        token = url.rstrip("/").rsplit("/", 1)[-1]
        image_id = image_id_for(token) if "/references/" in url else None
        if image_id is not None:
            picks.append(f"{IMAGE}:{image_id}")
        else:
            others.append(url)
    return picks, others


def _ids(values: list[str], kind: str) -> list[int]:
    ids = []
    for value in values or []:
        prefix, _sep, pk = str(value).partition(":")
        if prefix == kind and pk.isdigit():
            ids.append(int(pk))
    return ids


def _offer(queryset: QuerySet, chosen: list[int]) -> list[Any]:
    recent = list(queryset[:RECENT])
    shown = {image.pk for image in recent}
    missing = [pk for pk in chosen if pk not in shown]
    return list(queryset.filter(pk__in=missing)) + recent if missing else recent
