"""An admin site for the content test models (tests.content_app) with
imagegen's ImageFieldsAdminMixin, and a URLconf mounting it beside the
example site's: ``pytest.mark.urls("tests.field_admin")``.

The admins declare nothing themselves: the tests declare the fields in
IMAGEGEN["IMAGE_FIELDS"], so other tests' declarations stay their own.
"""

from django.contrib import admin
from django.urls import path

from imagegen.admin import ImageFieldsAdminMixin
from project.urls import urlpatterns as site_urlpatterns
from tests.content_app.models import Article, Profile

site = admin.AdminSite(name="content_admin")


@admin.register(Article, site=site)
class ArticleAdmin(ImageFieldsAdminMixin, admin.ModelAdmin):
    fields = ("title", "summary", "cover", "cover_alt")


@admin.register(Profile, site=site)
class ProfileAdmin(ImageFieldsAdminMixin, admin.ModelAdmin):
    fields = ("name", "portrait")


urlpatterns = [path("content-admin/", site.urls), *site_urlpatterns]
