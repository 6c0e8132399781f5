from django.contrib import admin

from imagegen.admin import BulkFillAdminMixin, ImageFieldsAdminMixin

from .models import Article


@admin.register(Article)
class ArticleAdmin(BulkFillAdminMixin, ImageFieldsAdminMixin, admin.ModelAdmin):
    """A Generate control beside the cover (declared in IMAGEGEN["IMAGE_FIELDS"]),
    and the action that generates covers for the selected articles."""

    list_display = ("title", "cover")
    search_fields = ("title", "summary")
