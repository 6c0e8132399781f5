"""imagegen's models: jobs and the runs that group them, the default asset,
the callback audit log, outbound webhook endpoints and their deliveries, API
tokens, and the heartbeats of background processes.

Models hold data and read-only helpers. Every state change goes through
:mod:`imagegen.services`, which writes with conditional UPDATEs.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .choices import (
    ACTIVE,
    TERMINAL,
    AltTextDraftState,
    AspectRatio,
    Mode,
    Resolution,
    ReviewStatus,
    Source,
    Status,
)
from .draft_fields import AltTextDraftFields
from .storage import get_storage


class GenerationRun(models.Model):
    """Jobs started together by one request: the candidates of one prompt,
    a comparison of settings or prompt wordings, or the fill of a model's
    image field for many objects. Price and budgets cover the whole run."""

    class Kind(models.TextChoices):
        CANDIDATES = "candidates", _("Candidates")
        COMPARE = "compare", _("Comparison")
        FILL = "fill", _("Bulk fill")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # A fill run's model and field (``app_label.Model.field`` declarations).
    target_content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_field = models.CharField(_("target field"), max_length=100, blank=True)
    # What was asked for, as the form or the API received it, for "more like this".
    settings = models.JSONField(_("settings"), default=dict, blank=True)

    class Meta:
        verbose_name = _("generation run")
        verbose_name_plural = _("generation runs")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"


class GenerationJob(models.Model):
    """One request to generate images, from creation to stored assets."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(_("provider"), max_length=50)
    model = models.CharField(_("model"), max_length=100)
    mode = models.CharField(_("mode"), max_length=20, choices=Mode.choices)
    prompt = models.TextField(_("prompt"))
    reference_urls = models.JSONField(_("reference image URLs"), default=list, blank=True)
    reference_images = models.ManyToManyField(
        "imagegen.GeneratedImage",
        verbose_name=_("reference images"),
        related_name="referenced_by",
        blank=True,
    )
    resolution = models.CharField(_("resolution"), max_length=4, choices=Resolution.choices)
    aspect_ratio = models.CharField(_("aspect ratio"), max_length=8, choices=AspectRatio.choices)

    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.QUEUED
    )
    # NULL (not "") until submitted, so the unique constraint ignores unsubmitted jobs.
    provider_task_id = models.CharField(  # noqa: DJ001
        _("provider task id"), max_length=200, null=True, blank=True
    )
    # sha256 of the secret in the callback URL; the secret itself is never stored.
    callback_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    result_urls = models.JSONField(default=list, blank=True, editable=False)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    started_at = models.DateTimeField(_("first seen running"), null=True, blank=True)
    provider_completed_at = models.DateTimeField(_("provider finished"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    deadline_at = models.DateTimeField(_("deadline"))
    # When the sweeper should next look at the job (submit, poll, resume finalize).
    next_poll_at = models.DateTimeField(_("next check"), null=True, blank=True)
    poll_count = models.PositiveIntegerField(_("polls"), default=0)
    # Whether callbacks are arriving is read from how recent jobs ended; it
    # picks the polling schedule of the next ones (imagegen.scheduling).
    completed_via = models.CharField(
        _("outcome learnt by"), max_length=8, choices=Source.choices, blank=True
    )
    # Submission attempts: every request to the provider, answered or not,
    # counts against SUBMIT_MAX_ATTEMPTS. Those answered with a task and those
    # whose answer never came (the provider may have accepted and charged
    # them) are counted apart: each beyond the job's own task is spend
    # (services.budgets).
    submit_attempts = models.PositiveIntegerField(_("submission attempts"), default=0)
    submit_accepted = models.PositiveIntegerField(_("submissions accepted"), default=0)
    submit_lost = models.PositiveIntegerField(_("submissions without an answer"), default=0)
    # Set while an attempt waits on the provider; still set when the job is
    # claimed again, it marks an attempt whose worker died mid-call.
    submitting_since = models.DateTimeField(null=True, blank=True, editable=False)
    finalize_attempts = models.PositiveIntegerField(default=0)
    # A worker holding the job (submitting or storing) until then; others keep off.
    lease_until = models.DateTimeField(null=True, blank=True)
    provider_cost_time_ms = models.PositiveIntegerField(null=True, blank=True)

    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    # The values the message for ``error_code`` is rendered with, in the
    # reader's language when shown (error_message keeps the text as made).
    error_params = models.JSONField(_("error parameters"), default=dict, blank=True)
    # The language of the person who asked (their active language then), so work
    # done later for them, such as drafting alt text, speaks it. "" = LANGUAGE_CODE.
    language = models.CharField(_("language"), max_length=15, blank=True)

    estimated_cost = models.DecimalField(
        _("estimated cost"), max_digits=10, decimal_places=4, null=True, blank=True
    )
    charged_cost = models.DecimalField(
        _("charged cost"), max_digits=10, decimal_places=4, null=True, blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="imagegen_jobs",
    )
    target_content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_object_id = models.CharField(max_length=255, blank=True)
    # The target's field the job was made for (imagegen.fields): its history
    # lists the job even when the editor left before it finished. On an add
    # form the object id stays empty until the form saves and links the job.
    target_field = models.CharField(_("target field"), max_length=100, blank=True)
    target = GenericForeignKey("target_content_type", "target_object_id")
    run = models.ForeignKey(
        GenerationRun,
        verbose_name=_("run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )
    # The job whose settings this one started from ("generate again", "more
    # like this"); with retry_of and the references, a job's lineage.
    source_job = models.ForeignKey(
        "self",
        verbose_name=_("made from"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="derived_jobs",
    )
    retry_of = models.ForeignKey(
        "self",
        verbose_name=_("retry of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retries",
    )
    # A caller's key for "create this job once": a form submitted twice, a
    # retried API request or a repeated retry action finds the first job. The
    # key is unique only within its scope (who posted it, and from where), so
    # one user's key can never find or block another's job.
    idempotency_key = models.CharField(max_length=100, blank=True, editable=False)
    idempotency_scope = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("generation job")
        verbose_name_plural = _("generation jobs")
        ordering = ["-created_at"]
        permissions = [
            ("view_all_jobs", _("Can see other users' generation jobs")),
            ("cancel_any_job", _("Can cancel other users' generation jobs")),
            ("exceed_budget", _("Can spend beyond the per-user budgets")),
            ("view_cost_report", _("Can see the cost report")),
        ]
        indexes = [
            # The sweeper's query: active jobs that are due, oldest first.
            models.Index(
                fields=["next_poll_at"],
                name="imagegen_job_due_idx",
                condition=Q(status__in=[s.value for s in ACTIVE]),
            ),
            models.Index(fields=["-created_at"], name="imagegen_job_created_idx"),
            models.Index(fields=["status", "-created_at"], name="imagegen_job_status_idx"),
            # A field's history (services.field_jobs.jobs_for_field), newest first.
            models.Index(
                fields=["target_content_type", "target_object_id", "target_field", "-created_at"],
                name="imagegen_job_field_idx",
            ),
            # Recent outcomes per provider (services.callbacks.callbacks_arriving).
            models.Index(
                fields=["provider", "-provider_completed_at"],
                name="imagegen_job_outcome_idx",
                condition=~Q(completed_via=""),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_task_id"],
                name="imagegen_job_unique_task",
                condition=Q(provider_task_id__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["idempotency_scope", "idempotency_key"],
                name="imagegen_job_unique_idempotency_key",
                condition=~Q(idempotency_key=""),
            ),
        ]

    def __str__(self) -> str:
        # The prompt only: a status here would go stale on pages that update live.
        return self.prompt if len(self.prompt) <= 60 else self.prompt[:59] + "…"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration(self):
        """Time from creation to completion (or to now, while running)."""
        from django.utils import timezone

        return (self.completed_at or timezone.now()) - self.created_at

    @property
    def error_text(self) -> str:
        """Why the job failed, expired or waits, in the active language:
        rendered from ``error_code`` and ``error_params`` when shown
        (:func:`imagegen.failures.render_failure`), else the stored
        ``error_message``. Every display reads this, not ``error_message``."""
        from .failures import render_failure

        return render_failure(self.error_code, self.error_params, self.error_message)


class GeneratedImage(AltTextDraftFields):
    """The default CMS asset: one stored result image of a job, and its alt
    text draft (:class:`~imagegen.draft_fields.AltTextDraftFields`), confirmed
    into ``alt_text`` by an editor."""

    job = models.ForeignKey(
        GenerationJob, verbose_name=_("job"), on_delete=models.PROTECT, related_name="images"
    )
    index = models.PositiveSmallIntegerField(_("index"))
    # Empty once the image is discarded: the row stays as a record, the file goes.
    file = models.FileField(_("file"), storage=get_storage, max_length=255, blank=True)
    thumbnail = models.FileField(_("thumbnail"), storage=get_storage, max_length=255, blank=True)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    size = models.PositiveBigIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    content_type = models.CharField(_("content type"), max_length=50)
    title = models.CharField(_("title"), max_length=255, blank=True)
    alt_text = models.CharField(_("alt text"), max_length=500, blank=True)
    # An image that needs no alt text (alt=""), marked so by an editor: it meets
    # IMAGEGEN["REQUIRE_ALT_TEXT"] without one.
    decorative = models.BooleanField(_("decorative"), default=False)
    review_status = models.CharField(
        _("review"), max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.NEW
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    # Provenance: what made this image, so it can be regenerated.
    prompt = models.TextField(_("prompt"))
    provider = models.CharField(_("provider"), max_length=50)
    model = models.CharField(_("model"), max_length=100)
    settings = models.JSONField(_("settings"), default=dict)
    # What was written into the file's own metadata (imagegen.provenance).
    provenance = models.JSONField(_("provenance"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("generated image")
        verbose_name_plural = _("generated images")
        ordering = ["-created_at", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="imagegen_image_unique_output"),
        ]
        indexes = [
            # The sweep's purge of discarded files once their undo time is over:
            # only the few discarded images that still have a file.
            models.Index(
                fields=["reviewed_at"],
                name="imagegen_image_discarded_idx",
                condition=Q(review_status=ReviewStatus.DISCARDED) & ~Q(file=""),
            ),
            # The sweep's re-sending of drafts whose task was lost: the few pending.
            models.Index(
                fields=["alt_text_draft_requested_at"],
                name="imagegen_image_drafting_idx",
                condition=Q(alt_text_draft_state=AltTextDraftState.PENDING),
            ),
        ]

    def __str__(self) -> str:
        # What people call it: never the storage path.
        if self.title:
            return self.title
        prompt = " ".join(self.prompt.split())
        return prompt if len(prompt) <= 60 else prompt[:59] + "…"

    @property
    def is_discarded(self) -> bool:
        return self.review_status == ReviewStatus.DISCARDED

    @property
    def thumbnail_url(self) -> str:
        """Storage URL of the small preview, or of the image itself until the
        preview exists: for readers without a session (the API, webhooks)."""
        if self.thumbnail:
            return self.thumbnail.url
        return self.file.url if self.file else ""

    @property
    def preview_url(self) -> str:
        """The stable URL of the preview for the site's own pages: made on its
        first view by ``imagegen:image-preview`` (the viewer's session and
        permissions decide), or "" when the image has no file."""
        if not self.file:
            return ""
        return reverse("imagegen:image-preview", args=[self.pk])


class WebhookDelivery(models.Model):
    """One incoming callback, stored before it is trusted, for audit and replay."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")
        ACCEPTED = "accepted", _("Accepted")
        DUPLICATE = "duplicate", _("Duplicate or stale")
        FORBIDDEN = "forbidden", _("Wrong token")
        UNKNOWN_JOB = "unknown_job", _("Unknown job")
        MALFORMED = "malformed", _("Malformed")
        TOO_LARGE = "too_large", _("Too large")
        ERROR = "error", _("Processing error")

    job = models.ForeignKey(
        GenerationJob,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    job_ref = models.CharField(_("job id in URL"), max_length=64)
    provider = models.CharField(_("provider"), max_length=50)
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    remote_addr = models.GenericIPAddressField(_("remote address"), null=True, blank=True)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.TextField(_("body"), blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=12, choices=Outcome.choices, default=Outcome.RECEIVED
    )
    status_code = models.PositiveSmallIntegerField(_("answered"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-received_at"]
        indexes = [
            # The retention purge: old records of one kind of outcome.
            models.Index(fields=["outcome", "received_at"], name="imagegen_delivery_purge_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.job_ref} {self.outcome}"


class WebhookEndpoint(models.Model):
    """An automation's subscription to job events, delivered as signed
    outbound webhooks (Standard Webhooks).

    The signing secret is never stored: it is derived from ``SECRET_KEY``, the
    endpoint's id and ``secret_version`` (:mod:`imagegen.webhooks.signing`),
    so rotating it is a matter of bumping the version.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(_("events"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    secret_version = models.PositiveIntegerField(default=1, editable=False)
    # After a rotation the previous version's secret still signs until then,
    # so receivers can switch without missing a delivery.
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.description or self.url


class OutboundDelivery(models.Model):
    """One event for one endpoint: its payload, attempts and outcome."""

    class State(models.TextChoices):
        PENDING = "pending", pgettext_lazy("webhook delivery state", "Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", pgettext_lazy("webhook delivery state", "Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        verbose_name=_("endpoint"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    job = models.ForeignKey(
        GenerationJob,
        verbose_name=_("job"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound_deliveries",
    )
    event = models.CharField(_("event"), max_length=50)
    # The webhook-id header: the same for every attempt, so receivers can dedupe.
    message_id = models.CharField(_("message id"), max_length=64, unique=True)
    payload = models.JSONField(_("payload"))
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last answer"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbound webhook delivery")
        verbose_name_plural = _("outbound webhook deliveries")
        ordering = ["-created_at"]
        indexes = [
            # Deliveries whose retry is due (the sweeper re-sends lost ones).
            models.Index(
                fields=["next_attempt_at"],
                name="imagegen_outbound_due_idx",
                condition=Q(state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.message_id}"


class ApiToken(models.Model):
    """A bearer token for the JSON API, acting as its user.

    Only the SHA-256 of the token is stored; the token itself is shown once,
    when it is created. ``prefix`` (its first characters) identifies it in
    lists and logs.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="imagegen_api_tokens",
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked = models.BooleanField(_("revoked"), default=False)
    # What the token may do (imagegen.api.auth.SCOPES); checked by every API operation.
    scopes = models.JSONField(_("scopes"), default=list)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]
        permissions = [
            ("add_token_for_others", _("Can create API tokens for other users")),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Heartbeat(models.Model):
    """When a background process last showed it is alive: one row per name.

    ``sweep``: the sweeper finished a run; ``worker``: a Celery worker started
    one of imagegen's tasks; ``ping:<nonce>``: a worker ran the ping of
    ``manage.py imagegen doctor``. Written by :mod:`imagegen.services.health`,
    read by the doctor and the job list's health notice.
    """

    name = models.CharField(_("name"), max_length=64, primary_key=True)
    seen_at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} {self.seen_at:%Y-%m-%d %H:%M:%S}"
