"""The link between a job's output and the filer image made from it.

The image model is filer's (``FILER_IMAGE_MODEL``), so imagegen cannot add
fields to it. This row holds what the image cannot: which job and output
made it, and the ``(job, index)`` constraint that makes each output exactly
one image even if a finalize runs twice.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from filer import settings as filer_settings

from imagegen.models import GenerationJob


class GeneratedFilerImage(models.Model):
    job = models.ForeignKey(
        GenerationJob,
        verbose_name=_("job"),
        # As for GeneratedImage: a job that made assets stays, as their record.
        on_delete=models.PROTECT,
        related_name="filer_images",
    )
    index = models.PositiveSmallIntegerField(_("index"))
    image = models.OneToOneField(
        filer_settings.FILER_IMAGE_MODEL,
        verbose_name=_("image"),
        # Deleting the image in filer deletes the link (and filer the file).
        on_delete=models.CASCADE,
        related_name="imagegen_output",
    )
    # What made the image (imagegen.adapters.provenance), kept with the link.
    settings = models.JSONField(_("settings"), default=dict)
    # What was written into the file's own metadata (imagegen.provenance).
    provenance = models.JSONField(_("provenance"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("generated filer image")
        verbose_name_plural = _("generated filer images")
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="imagegen_filer_unique_output"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} #{self.index} → {self.image_id}"
