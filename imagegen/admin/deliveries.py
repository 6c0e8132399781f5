"""The callback audit log: read-only, with a replay action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy, ngettext

from .. import services
from ..models import WebhookDelivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("received_at", "provider", "job_ref", "outcome", "status_code", "remote_addr")
    list_filter = ("outcome", "provider")
    search_fields = ("=job_ref",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["replay_deliveries"]

    @admin.action(description=gettext_lazy("Replay selected deliveries"), permissions=["change"])
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        results = [services.replay(delivery) for delivery in queryset.select_related("job")]
        applied = sum(r.outcome == WebhookDelivery.Outcome.ACCEPTED for r in results)
        # One sentence per count, so each agrees with its own number.
        replayed = ngettext(
            "%(n)d delivery replayed.", "%(n)d deliveries replayed.", len(results)
        ) % {"n": len(results)}
        changed = ngettext(
            "%(n)d of them changed its job.", "%(n)d of them changed their jobs.", applied
        ) % {"n": applied}
        self.message_user(request, f"{replayed} {changed}", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
