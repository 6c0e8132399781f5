"""Enumerations shared by models, forms, providers and the API."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SUBMITTED = "submitted", _("Submitted")
    RUNNING = "running", _("Running")
    FINALIZING = "finalizing", _("Storing results")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", pgettext_lazy("job status", "Failed")
    CANCELED = "canceled", _("Canceled")
    EXPIRED = "expired", _("Expired")


#: Waiting on the provider.
IN_FLIGHT = (Status.SUBMITTED, Status.RUNNING)
#: Not finished: the sweeper looks after these.
ACTIVE = (Status.QUEUED, Status.SUBMITTED, Status.RUNNING, Status.FINALIZING)
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED, Status.EXPIRED)


class Mode(models.TextChoices):
    TEXT_TO_IMAGE = "text-to-image", _("Text to image")
    IMAGE_TO_IMAGE = "image-to-image", _("Image to image")


class Resolution(models.TextChoices):
    R1K = "1k", "1K"
    R2K = "2k", "2K"
    R4K = "4k", "4K"


class AspectRatio(models.TextChoices):
    AUTO = "auto", _("Automatic")
    SQUARE = "1:1", "1:1"
    LANDSCAPE = "4:3", "4:3"
    PORTRAIT = "3:4", "3:4"
    WIDE = "16:9", "16:9"
    TALL = "9:16", "9:16"


class ReviewStatus(models.TextChoices):
    NEW = "new", _("Not reviewed")
    APPROVED = "approved", _("Approved")
    DISCARDED = "discarded", _("Discarded")


class AltTextDraftState(models.TextChoices):
    """Where drafting an image's alt text stands (IMAGEGEN["DESCRIBER"])."""

    NONE = "", _("Not drafted")
    PENDING = "pending", _("Being drafted")
    READY = "ready", _("Drafted")
    FAILED = "failed", _("Could not be drafted")


class TaskStatus(models.TextChoices):
    """A provider task's state, normalised across providers."""

    PENDING = "pending", pgettext_lazy("provider task status", "Pending")
    PROCESSING = "processing", _("Processing")
    SUCCESS = "success", _("Success")
    FAILED = "failed", pgettext_lazy("provider task status", "Failed")


class Source(models.TextChoices):
    """How imagegen learnt a job's outcome."""

    CALLBACK = "callback", _("Callback")
    POLL = "poll", pgettext_lazy("how the outcome was learnt", "Poll")
    SUBMIT = "submit", _("Submission answer")
