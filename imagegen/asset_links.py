"""The abstract link between a job's output and the CMS image made from it.

A CMS's image model (Wagtail's ``get_image_model()``, filer's
``FILER_IMAGE_MODEL``) belongs to the site, so imagegen cannot add fields to
it. A concrete subclass in each integration holds what the image cannot:
which job and output made it, and the ``(job, index)`` constraint that makes
each output exactly one image even if a finalize runs twice.
:class:`imagegen.adapters.LinkedAssetAdapter` creates these rows.

Being abstract, this model has no table and no migration of its own: its
subclasses keep the fields, names and constraints they always had.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .models import GenerationJob


def job_field(related_name: str) -> models.ForeignKey:
    """The link's ``job`` field, reached from the job as ``related_name``."""
    return models.ForeignKey(
        GenerationJob,
        verbose_name=_("job"),
        # As for GeneratedImage: a job that made assets stays, as their record.
        on_delete=models.PROTECT,
        related_name=related_name,
    )


def image_field(to: str) -> models.OneToOneField:
    """The link's ``image`` field, to the CMS image model ``to`` ("app.Model")."""
    return models.OneToOneField(
        to,
        verbose_name=_("image"),
        # Deleting the image in the CMS deletes the link (and the CMS the file).
        on_delete=models.CASCADE,
        related_name="imagegen_output",
    )


class AssetLink(models.Model):
    """Base of the CMS link models; subclasses add ``job = job_field(...)``
    and ``image = image_field(...)``.

    Their ``Meta`` subclasses ``AssetLink.Meta`` for the ordering and the
    constraint ``<app_label>_unique_output`` on ``(job, index)``.
    """

    index = models.PositiveSmallIntegerField(_("index"))
    # What made the image (imagegen.adapters.provenance), kept with the link.
    settings = models.JSONField(_("settings"), default=dict)
    # What was written into the file's own metadata (imagegen.provenance).
    provenance = models.JSONField(_("provenance"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="%(app_label)s_unique_output"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} #{self.index} → {self.image_id}"
