"""Mounted under the Wagtail admin by ``wagtail_hooks`` (admin login and
``wagtailadmin.access_admin`` are Wagtail's own checks)."""

from django.urls import path

from . import views

app_name = "imagegen_wagtail"

urlpatterns = [
    path("", views.GenerateView.as_view(), name="generate"),
    path("jobs/<uuid:job_id>/", views.JobView.as_view(), name="job"),
    path("jobs/<uuid:job_id>/status/", views.status, name="status"),
    path("chooser/", views.ChooserGenerateView.as_view(), name="chooser"),
]
