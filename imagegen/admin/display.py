"""Small HTML pieces shared by the admin's lists and pages."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html

from ..models import GeneratedImage


def status_badge(status: str, label: str) -> str:
    """A coloured status label; colours come from the stylesheet (dark mode aware)."""
    return format_html('<span class="imagegen-badge imagegen-badge--{}">{}</span>', status, label)


def thumbnail(image: GeneratedImage, *, size: int) -> str:
    """A lazily loaded preview of ``image``, at most ``size`` pixels a side."""
    url = preview_url(image)
    if not url:
        return ""
    return format_html(
        '<img class="imagegen-thumb" src="{}" alt="{}" loading="lazy" '
        'style="max-width:{}px;max-height:{}px">',
        url,
        image.alt_text or image.prompt[:80],
        size,
        size,
    )


def preview_url(image: GeneratedImage) -> str:
    """The stable URL of ``image``'s preview (made on its first view by
    ``imagegen:image-preview``), or "" when the image has no file."""
    if not image.file:
        return ""
    return reverse("imagegen:image-preview", args=[image.pk])
