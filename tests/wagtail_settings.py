"""The test settings with a real Wagtail install: imagegen.contrib.wagtail,
the Wagtail image adapter and a page model with an image field.

The Wagtail tests run in their own pytest invocation on these settings::

    DJANGO_SETTINGS_MODULE=tests.wagtail_settings .venv/bin/pytest tests/wagtail
"""

from tests.settings import *  # noqa: F403
from tests.settings import IMAGEGEN, INSTALLED_APPS

INSTALLED_APPS = [
    # Before wagtail.images: its template adds the chooser's "Generate image" button.
    "imagegen.contrib.wagtail",
    "tests.wagtail_app",
    "wagtail.users",
    "wagtail.images",
    "wagtail.documents",
    "wagtail.snippets",
    "wagtail.sites",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_filters",
    *INSTALLED_APPS,
]
ROOT_URLCONF = "tests.wagtail_urls"
WAGTAIL_SITE_NAME = "imagegen tests"
WAGTAILADMIN_BASE_URL = "http://localhost"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
IMAGEGEN = {
    **IMAGEGEN,
    "ASSET_ADAPTER": "imagegen.contrib.wagtail.adapters.WagtailImageAdapter",
    "WAGTAIL_COLLECTION": "Generated",
}
