from django.db import models
from django.utils.translation import gettext_lazy as _


class Article(models.Model):
    """An article with a cover image, and the cover's alt text."""

    title = models.CharField(_("title"), max_length=200)
    summary = models.TextField(_("summary"), blank=True)
    cover = models.ImageField(_("cover image"), upload_to="articles/covers/%Y/", blank=True)
    cover_alt = models.CharField(_("cover alt text"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("article")
        verbose_name_plural = _("articles")

    def __str__(self) -> str:
        return self.title
