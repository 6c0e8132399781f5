import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models


def banner_storage() -> FileSystemStorage:
    """A storage of the banner field's own, apart from the default one
    (a callable: the migration does not capture it)."""
    return FileSystemStorage(
        location=os.path.join(settings.MEDIA_ROOT, "banner-storage"), base_url="/banners/"
    )


class Article(models.Model):
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    cover = models.ImageField(upload_to="covers/%Y/", blank=True)
    cover_alt = models.CharField(max_length=120, blank=True)
    attachment = models.FileField(upload_to="attachments/", blank=True)
    banner = models.ImageField(
        upload_to="banners/",
        storage=banner_storage,
        width_field="banner_width",
        height_field="banner_height",
        blank=True,
    )
    banner_width = models.PositiveIntegerField(null=True, blank=True)
    banner_height = models.PositiveIntegerField(null=True, blank=True)
    word_count = models.PositiveIntegerField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return self.title


class Profile(models.Model):
    name = models.CharField(max_length=100)
    portrait = models.ForeignKey(
        "imagegen.GeneratedImage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    def __str__(self) -> str:
        return self.name
