"""Mounted under the Wagtail admin by ``wagtail_hooks`` (admin login and
``wagtailadmin.access_admin`` are Wagtail's own checks)."""

from typing import Any

from django.urls import URLPattern, path

from ...views import status_outage
from . import views

app_name = "imagegen_wagtail"


class OutageAnsweringPattern(URLPattern):
    """A route whose view answers a database outage with the status JSON's
    503, even once Wagtail has wrapped it in its admin-access check: that
    check reads the session and the user from the database before the view
    runs, so the outage handler must stay the outermost wrapper, whatever
    wraps the view later."""

    @property
    def callback(self) -> Any:
        return self._outage_callback

    @callback.setter
    def callback(self, view: Any) -> None:
        self._outage_callback = status_outage(view)


def _outage_answering(route: str, view: Any, name: str) -> URLPattern:
    pattern = path(route, view, name=name)
    return OutageAnsweringPattern(pattern.pattern, pattern.callback, name=name)


urlpatterns = [
    path("", views.GenerateView.as_view(), name="generate"),
    path("jobs/<uuid:job_id>/", views.JobView.as_view(), name="job"),
    _outage_answering("jobs/<uuid:job_id>/status/", views.status, name="status"),
    path("jobs/<uuid:job_id>/retry/", views.JobActionView.as_view(action="retry"), name="retry"),
    path("jobs/<uuid:job_id>/cancel/", views.JobActionView.as_view(action="cancel"), name="cancel"),
    path("chooser/", views.ChooserGenerateView.as_view(), name="chooser"),
    path(
        "chooser/images/<int:image_id>/confirm/",
        views.ChooserConfirmView.as_view(),
        name="chooser_confirm",
    ),
]
