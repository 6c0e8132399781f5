"""``path("imagegen/", include("imagegen.urls"))`` mounts these."""

from django.urls import include, path

from . import views

app_name = "imagegen"

urlpatterns = [
    path(
        "callbacks/<slug:provider>/<uuid:job_id>/<str:token>/",
        views.callback,
        name="callback",
    ),
    path("jobs/<uuid:job_id>/status/", views.status, name="job-status"),
    # The automation API (docs/api.md); its names are in this namespace too.
    path("api/v1/", include("imagegen.api.urls")),
]
