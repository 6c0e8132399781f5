from django.contrib import admin

from imagegen.admin import ImageFieldsAdminMixin

from .models import Article


@admin.register(Article)
class ArticleAdmin(ImageFieldsAdminMixin, admin.ModelAdmin):
    """A Generate control beside the cover (declared in IMAGEGEN["IMAGE_FIELDS"])."""

    list_display = ("title", "cover")
    search_fields = ("title", "summary")
