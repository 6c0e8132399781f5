"""imagegen for Wagtail: results become Wagtail images, generated from the
Wagtail admin and its image chooser.

Install with ``pip install "django-imagegen[wagtail]"``, add
``"imagegen.contrib.wagtail"`` to ``INSTALLED_APPS`` (before
``"wagtail.images"``) and set ``IMAGEGEN["ASSET_ADAPTER"]`` to
``"imagegen.contrib.wagtail.adapters.WagtailImageAdapter"``; include
``imagegen.contrib.wagtail.public_urls`` in the site's URLconf so library
images can be references. See docs/wagtail.md.
"""

from __future__ import annotations

from imagegen.exceptions import ImagegenConfigurationError

try:
    import wagtail  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImagegenConfigurationError(
        "imagegen.contrib.wagtail needs Wagtail: install the extra with "
        "pip install 'django-imagegen[wagtail]'."
    ) from exc
