from django.db import models
from filer.fields.image import FilerImageField


class Event(models.Model):
    title = models.CharField(max_length=200)
    venue = models.CharField(max_length=200, blank=True)
    poster = FilerImageField(null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    poster_alt = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.title
