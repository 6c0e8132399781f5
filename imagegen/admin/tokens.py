"""API tokens: made here (the key is shown once), listed, revoked.

Users manage their own tokens (with the model's add/view/change/delete
permissions); superusers see everyone's and may make tokens for others.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..api import auth
from ..models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "user",
        "prefix_display",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked",
    )
    list_filter = ("revoked",)
    search_fields = ("name", "=prefix", f"user__{get_user_model().USERNAME_FIELD}")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    actions = ["revoke_tokens"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(user=request.user.pk)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None:
            return [
                "name",
                "user",
                "prefix_display",
                "created_at",
                "last_used_at",
                "expires_at",
                "revoked",
            ]
        # Others' tokens are a superuser's business; everyone else makes their own.
        if request.user.is_superuser:
            return ["name", "user", "expires_at"]
        return ["name", "expires_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        # Revoking is one way (the action); a token never changes hands.
        return ["user", "prefix_display", "created_at", "last_used_at", "revoked"]

    @admin.display(description=gettext_lazy("prefix"), ordering="prefix")
    def prefix_display(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        if not (request.user.is_superuser and obj.user_id):
            obj.user = request.user
        raw = auth.assign_key(obj)
        super().save_model(request, obj, form, change)
        self.message_user(
            request,
            format_html(
                _(
                    "The token “{}” is <code>{}</code>. Copy it now: only a hash is "
                    "stored, and it will not be shown again."
                ),
                obj.name,
                raw,
            ),
            messages.WARNING,
        )

    def _owns(self, request: HttpRequest, obj: ApiToken | None) -> bool:
        return obj is None or request.user.is_superuser or obj.user_id == request.user.pk

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self._owns(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._owns(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._owns(request, obj)

    @admin.action(description=gettext_lazy("Revoke selected tokens"), permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        # get_queryset already limits the selection to the user's own tokens.
        live = list(queryset.filter(revoked=False))
        count = ApiToken.objects.filter(pk__in=[t.pk for t in live]).update(revoked=True)
        for token in live:
            self.log_change(request, token, _("Revoked."))
        self.message_user(
            request,
            ngettext("%d token revoked.", "%d tokens revoked.", count) % count,
            messages.SUCCESS,
        )

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        # A suggestion (clear it for a token that never expires).
        initial.setdefault("expires_at", timezone.now() + timedelta(days=365))
        return initial
