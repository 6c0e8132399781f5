"""The test settings with a real django-filer install (no django CMS):
imagegen.contrib.filer, the filer image adapter and a model with a
FilerImageField.

The filer tests run in their own pytest invocation on these settings::

    DJANGO_SETTINGS_MODULE=tests.filer_settings .venv/bin/pytest tests/filer
"""

from tests.settings import *  # noqa: F403
from tests.settings import IMAGEGEN, INSTALLED_APPS

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "easy_thumbnails",
    # Before filer: its image page's template extends filer's (imagegen_filer.W001).
    "imagegen.contrib.filer",
    "filer",
    "tests.filer_app",
]
IMAGEGEN = {
    **IMAGEGEN,
    "ASSET_ADAPTER": "imagegen.contrib.filer.adapters.FilerImageAdapter",
    "FILER_FOLDER": "Generated/Events",
}
