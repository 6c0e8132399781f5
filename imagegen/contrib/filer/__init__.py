"""imagegen for django-filer (django CMS's asset library): results become
filer images in a folder of their own, and ``FilerImageField`` s are
generable fields (imagegen.fields).

Install with ``pip install "django-imagegen[filer]"``, add
``"imagegen.contrib.filer"`` to ``INSTALLED_APPS`` (before ``"filer"``, so
filer's image page offers alt text drafts; with ``"easy_thumbnails"``) and
set ``IMAGEGEN["ASSET_ADAPTER"]`` to
``"imagegen.contrib.filer.adapters.FilerImageAdapter"``. See docs/fields.md.
"""

from __future__ import annotations

from imagegen.exceptions import ImagegenConfigurationError

try:
    import filer  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImagegenConfigurationError(
        "imagegen.contrib.filer needs django-filer: install the extra with "
        "pip install 'django-imagegen[filer]'."
    ) from exc
