"""The Wagtail integration's public URLs, outside the Wagtail admin (no login).

Include them in the site's URLconf, next to ``imagegen.urls``::

    path("imagegen/wagtail/", include("imagegen.contrib.wagtail.public_urls")),

They serve the library images chosen as references of a job to its provider
(:mod:`.references`).
"""

from django.urls import path

from .references import serve_reference

app_name = "imagegen_wagtail_public"

urlpatterns = [
    path("references/<str:token>/", serve_reference, name="reference"),
]
