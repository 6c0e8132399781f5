"""``path("imagegen/", include("imagegen.urls"))`` mounts these."""

from django.urls import path

from . import views

app_name = "imagegen"

urlpatterns = [
    path(
        "callbacks/<slug:provider>/<uuid:job_id>/<str:token>/",
        views.callback,
        name="callback",
    ),
    path("jobs/<uuid:job_id>/status/", views.status, name="job-status"),
]
