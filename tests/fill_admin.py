"""An admin site with the example site's Article admin plus imagegen's bulk
fill (BulkFillAdminMixin beside ImageFieldsAdminMixin, as docs/fields.md
shows), and a URLconf mounting it beside the example site's:
``pytest.mark.urls("tests.fill_admin")``."""

from django.contrib import admin
from django.urls import path

from imagegen.admin import ImageFieldsAdminMixin
from imagegen.admin.bulk_fill import BulkFillAdminMixin
from project.articles.admin import ArticleAdmin as SiteArticleAdmin
from project.articles.models import Article
from project.urls import urlpatterns as site_urlpatterns

site = admin.AdminSite(name="fill_admin")


@admin.register(Article, site=site)
class ArticleAdmin(BulkFillAdminMixin, ImageFieldsAdminMixin, admin.ModelAdmin):
    list_display = SiteArticleAdmin.list_display
    search_fields = SiteArticleAdmin.search_fields


urlpatterns = [path("fill-admin/", site.urls), *site_urlpatterns]
