"""Admin registrations. The editor workflow (generate form, live progress,
review actions) builds on these."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import GeneratedImage, GenerationJob, WebhookDelivery


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    extra = 0
    can_delete = False
    fields = ("index", "file", "width", "height", "content_type", "size", "alt_text")
    readonly_fields = ("index", "file", "width", "height", "content_type", "size")


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = (
        "prompt_short",
        "status",
        "resolution",
        "aspect_ratio",
        "provider",
        "created_by",
        "created_at",
        "poll_count",
    )
    list_filter = ("status", "provider", "resolution", "created_at")
    search_fields = ("prompt", "=id", "=provider_task_id")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in GenerationJob._meta.fields]
    exclude = ("callback_token_hash", "reference_images")
    inlines = [GeneratedImageInline]
    actions = ["cancel_jobs"]

    @admin.display(description=_("prompt"))
    def prompt_short(self, job: GenerationJob) -> str:
        return job.prompt if len(job.prompt) <= 80 else job.prompt[:79] + "…"

    @admin.action(description=_("Cancel selected jobs"), permissions=["change"])
    def cancel_jobs(self, request, queryset) -> None:
        count = sum(services.cancel(job.pk) for job in queryset.only("pk"))
        self.message_user(
            request,
            ngettext("%d job canceled.", "%d jobs canceled.", count) % count,
            messages.SUCCESS,
        )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(GeneratedImage)
class GeneratedImageAdmin(admin.ModelAdmin):
    list_display = ("__str__", "job", "index", "width", "height", "content_type", "created_at")
    list_select_related = ("job",)
    search_fields = ("prompt", "title", "alt_text")
    readonly_fields = (
        "job",
        "index",
        "file",
        "width",
        "height",
        "size",
        "sha256",
        "content_type",
        "prompt",
        "provider",
        "model",
        "settings",
        "created_at",
    )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("received_at", "provider", "job_ref", "outcome", "status_code", "remote_addr")
    list_filter = ("outcome", "provider")
    search_fields = ("=job_ref",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["replay_deliveries"]

    @admin.action(description=_("Replay selected deliveries"), permissions=["change"])
    def replay_deliveries(self, request, queryset) -> None:
        results = [services.replay(delivery) for delivery in queryset.select_related("job")]
        applied = sum(r.outcome == WebhookDelivery.Outcome.ACCEPTED for r in results)
        self.message_user(
            request, _("%(n)d replayed, %(a)d changed a job.") % {"n": len(results), "a": applied}
        )

    def has_add_permission(self, request) -> bool:
        return False
