"""Outbound webhooks in the admin: endpoints (subscriptions) and the delivery log.

An endpoint's signing secret is derived, never stored, and shown once: in a
message when the endpoint is created and when its secret is rotated. After a
rotation the message says until when the previous secret still signs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..exceptions import UnsafeURLError
from ..models import OutboundDelivery, WebhookEndpoint
from ..webhooks import delivery as webhook_delivery
from ..webhooks import events, signing
from .display import status_badge
from .object_actions import ObjectActionsMixin

#: Delivery states drawn with the job status colours.
_STATE_BADGES = {
    OutboundDelivery.State.PENDING: "running",
    OutboundDelivery.State.DELIVERED: "succeeded",
    OutboundDelivery.State.FAILED: "failed",
}


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label=gettext_lazy("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=gettext_lazy(
            "Public http(s) URL that receives signed POST requests (Standard Webhooks)."
        ),
    )
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"),
        choices=events.EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("The events delivered to this URL."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "events", "is_active")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            webhook_delivery.check_endpoint_url(url)
        except UnsafeURLError as exc:
            raise ValidationError(exc.message, code="unsafe_url") from None
        return url


def _when(moment: datetime) -> str:
    """A moment to the second, in the current time zone, named."""
    return localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ObjectActionsMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("__str__", "url", "events_display", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    readonly_fields = ("deliveries_link", "previous_secret", "created_by", "created_at")
    actions = ["rotate_secret", "send_test_event"]
    change_form_template = "admin/imagegen/webhookendpoint/change_form.html"

    class Media:
        css = {"all": ["imagegen/admin/imagegen.css"]}

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["url", "description", "events", "is_active"]
        if obj is not None:
            fields += ["deliveries_link", "previous_secret", "created_by", "created_at"]
        return [(None, {"fields": fields})]

    @admin.display(description=gettext_lazy("events"))
    def events_display(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events or [])

    @admin.display(description=gettext_lazy("deliveries"))
    def deliveries_link(self, endpoint: WebhookEndpoint) -> str:
        url = reverse("admin:imagegen_outbounddelivery_changelist")
        count = endpoint.deliveries.count()
        return format_html(
            '<a href="{}?endpoint__id__exact={}">{}</a>',
            url,
            endpoint.pk,
            ngettext("%(n)d delivery", "%(n)d deliveries", count) % {"n": count},
        )

    @admin.display(description=gettext_lazy("previous secret"))
    def previous_secret(self, endpoint: WebhookEndpoint) -> str:
        if len(signing.signing_secrets(endpoint)) < 2:
            return _("No longer signs.")
        return _("Still signs deliveries, with the current one, until %(until)s.") % {
            "until": _when(endpoint.previous_secret_until)
        }

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool):
        if not change and request.user.is_authenticated:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        self._show_secret(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def _show_secret(self, request: HttpRequest, endpoint: WebhookEndpoint) -> None:
        self.message_user(
            request,
            _(
                "Signing secret of “%(endpoint)s”: %(secret)s — copy it to the receiver "
                "now; it is not shown again."
            )
            % {"endpoint": endpoint, "secret": signing.endpoint_secret(endpoint)},
            messages.WARNING,
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        endpoint = self.get_object(request, object_id)
        buttons = []
        if endpoint is not None:
            for name, label in (
                ("send_test_event", _("Send test event")),
                ("rotate_secret", _("Rotate secret")),
            ):
                if self.object_action_allowed(request, name):
                    buttons.append(self.object_action_button(endpoint, name, label))
        context = {"endpoint_actions": buttons, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[Any]:
        return [*self.object_action_urls(), *super().get_urls()]

    @admin.action(description=gettext_lazy("Rotate the signing secret"), permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        until = signing.rotate(queryset)
        for endpoint in WebhookEndpoint.objects.filter(pk__in=queryset.values("pk")):
            self._show_secret(request, endpoint)
        if until is None:
            text = _(
                "The previous secret no longer signs deliveries (WEBHOOK_SECRET_GRACE is 0); "
                "deliveries that fail meanwhile are retried."
            )
        else:
            text = _(
                "Until %(until)s (WEBHOOK_SECRET_GRACE), deliveries are signed with both the "
                "new and the previous secret; then with the new one only. Give the receiver "
                "the new secret before then."
            ) % {"until": _when(until)}
        self.message_user(request, text, messages.INFO)

    @admin.action(description=gettext_lazy("Send a test event"), permissions=["change"])
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        endpoints = list(queryset)
        active = [endpoint for endpoint in endpoints if endpoint.is_active]
        for endpoint in active:
            events.send_test(endpoint)
        if active:
            self.message_user(
                request,
                ngettext(
                    "%(n)d test event was queued; see its delivery in the log.",
                    "%(n)d test events were queued; see their deliveries in the log.",
                    len(active),
                )
                % {"n": len(active)},
                messages.SUCCESS,
            )
        if len(active) < len(endpoints):
            self.message_user(
                request,
                _("Inactive endpoints get no events, test events included."),
                messages.WARNING,
            )


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read-only, with a "retry now" action."""

    list_display = (
        "created_at",
        "event",
        "endpoint",
        "state_display",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("state", "event", ("endpoint", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("=message_id",)
    list_select_related = ("endpoint",)
    date_hierarchy = "created_at"
    fields = (
        "event",
        "endpoint",
        "job",
        "message_id",
        "state",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
        "payload_display",
    )
    readonly_fields = fields
    actions = ["retry_deliveries"]

    class Media:
        css = {"all": ["imagegen/admin/imagegen.css"]}

    @admin.display(description=gettext_lazy("state"), ordering="state")
    def state_display(self, delivery: OutboundDelivery) -> str:
        return status_badge(_STATE_BADGES.get(delivery.state, ""), delivery.get_state_display())

    @admin.display(description=gettext_lazy("payload"))
    def payload_display(self, delivery: OutboundDelivery) -> str:
        text = json.dumps(delivery.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)

    @admin.action(description=gettext_lazy("Retry selected deliveries now"), permissions=["change"])
    def retry_deliveries(self, request: HttpRequest, queryset: QuerySet[OutboundDelivery]) -> None:
        total = queryset.count()
        queued = webhook_delivery.retry_now(queryset)
        # The words agree with the total; the number queued follows a label.
        text = ngettext(
            "Queued again: %(n)d of %(total)d delivery (delivered ones are left alone).",
            "Queued again: %(n)d of %(total)d deliveries (delivered ones are left alone).",
            total,
        ) % {"n": queued, "total": total}
        self.message_user(request, text, messages.SUCCESS if queued else messages.WARNING)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
