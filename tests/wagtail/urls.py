"""The Wagtail test URLs plus the integration's public URLs (library references)."""

from django.urls import include, path

from tests.wagtail_urls import urlpatterns as wagtail_test_urlpatterns

urlpatterns = [
    path("imagegen/wagtail/", include("imagegen.contrib.wagtail.public_urls")),
    *wagtail_test_urlpatterns,
]
