"""``path("imagegen/", include("imagegen.urls"))`` mounts these."""

from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from . import views
from .health.probe import callback_probe

app_name = "imagegen"

urlpatterns = [
    # What `manage.py imagegen doctor` calls to prove callbacks can reach the site.
    path("callbacks/probe/", callback_probe, name="callback-probe"),
    path(
        "callbacks/<slug:provider>/<uuid:job_id>/<str:token>/",
        views.callback,
        name="callback",
    ),
    path("jobs/<uuid:job_id>/status/", views.status, name="job-status"),
    # gettext() for imagegen's scripts: the pages that load them include this first.
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(domain="djangojs", packages=["imagegen"]),
        name="jsi18n",
    ),
    # An image's preview, made on its first view (docs/admin.md).
    path("images/<int:image_id>/preview/", views.image_preview, name="image-preview"),
    # The automation API (docs/api.md); its names are in this namespace too.
    path("api/v1/", include("imagegen.api.urls")),
]
