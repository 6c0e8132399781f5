"""Enumerations shared by models, forms, providers and the API."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SUBMITTED = "submitted", _("Submitted")
    RUNNING = "running", _("Running")
    FINALIZING = "finalizing", _("Storing results")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
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


class TaskStatus(models.TextChoices):
    """A provider task's state, normalised across providers."""

    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    SUCCESS = "success", _("Success")
    FAILED = "failed", _("Failed")


class Source(models.TextChoices):
    """How imagegen learnt a job's outcome."""

    CALLBACK = "callback", _("Callback")
    POLL = "poll", _("Poll")
    SUBMIT = "submit", _("Submission answer")
