"""Small HTML pieces shared by the admin's lists and pages."""

from __future__ import annotations

from django.utils.html import format_html

from ..models import GeneratedImage


def status_badge(status: str, label: str) -> str:
    """A coloured status label; colours come from the stylesheet (dark mode aware)."""
    return format_html('<span class="imagegen-badge imagegen-badge--{}">{}</span>', status, label)


def thumbnail(image: GeneratedImage, *, size: int) -> str:
    """A lazily loaded preview of ``image``, at most ``size`` pixels a side."""
    url = image.preview_url
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
