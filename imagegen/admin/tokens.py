"""API tokens: made here (the key is shown once), listed, revoked.

Users manage their own tokens (with the model's add/view/change/delete
permissions) and choose each token's scopes (:data:`imagegen.api.auth.SCOPES`)
when they make it. ``imagegen.add_token_for_others`` (superusers have it)
lets a user make tokens for other users, and see, revoke and delete
everyone's: whoever can mint a key that acts as another user already holds
more than that. Only superusers may make tokens for superusers. A token's
user and scopes never change after it is made (make a new one instead).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..api import auth
from ..models import ApiToken

#: Make tokens for other users, and see and revoke everyone's.
FOR_OTHERS = "imagegen.add_token_for_others"


def manages_others(user: Any) -> bool:
    """May ``user`` make, see and revoke other users' tokens?"""
    return bool(user.is_active and user.has_perm(FOR_OTHERS))


class ApiTokenForm(forms.ModelForm):
    """The add form. ``requester`` (set by :meth:`ApiTokenAdmin.get_form`)
    is who submits it: a token for a superuser needs a superuser."""

    requester: Any = None

    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"),
        choices=list(auth.SCOPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "What the token may do through the API (its user's permissions still "
            "apply). Choose only what the automation needs."
        ),
    )

    class Meta:
        model = ApiToken
        fields = ("name", "user", "scopes", "expires_at")

    def clean_scopes(self) -> list[str]:
        return auth.sorted_scopes(self.cleaned_data["scopes"])

    def clean_user(self) -> Any:
        user = self.cleaned_data["user"]
        requester = self.requester
        if user.is_superuser and not requester.is_superuser and user.pk != requester.pk:
            raise ValidationError(
                _("Only a superuser may make tokens for a superuser."), code="superuser_target"
            )
        return user


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = (
        "name",
        "user",
        "prefix_display",
        "scopes_display",
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
        if manages_others(request.user):
            return queryset
        return queryset.filter(user=request.user.pk)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is not None:
            # Only name and expiry change: the add form's scopes and user checks
            # have nothing to do here.
            kwargs["form"] = forms.ModelForm
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"requester": request.user})

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None:
            return [
                "name",
                "user",
                "prefix_display",
                "scopes_display",
                "created_at",
                "last_used_at",
                "expires_at",
                "revoked",
            ]
        # Without the permission the token is the requester's: no user field
        # (a posted one is ignored, save_model sets the requester).
        if manages_others(request.user):
            return ["name", "user", "scopes", "expires_at"]
        return ["name", "scopes", "expires_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        # Revoking is one way (the action); a token never changes hands or
        # grows its scopes after its key was handed out.
        return ["user", "prefix_display", "scopes_display", "created_at", "last_used_at", "revoked"]

    @admin.display(description=gettext_lazy("prefix"), ordering="prefix")
    def prefix_display(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.display(description=gettext_lazy("scopes"))
    def scopes_display(self, token: ApiToken) -> str:
        return ", ".join(auth.sorted_scopes(token.scopes)) or "—"

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        if not manages_others(request.user):
            obj.user = request.user
        raw = auth.assign_key(obj)
        super().save_model(request, obj, form, change)
        self.message_user(
            request,
            format_html(
                _(
                    "The token “{name}” is <code>{key}</code>. Copy it now: only a hash is "
                    "stored, and it will not be shown again."
                ),
                name=obj.name,
                key=raw,
            ),
            messages.WARNING,
        )

    def _manages(self, request: HttpRequest, obj: ApiToken | None) -> bool:
        return obj is None or obj.user_id == request.user.pk or manages_others(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self._manages(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._manages(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._manages(request, obj)

    @admin.action(description=gettext_lazy("Revoke selected tokens"), permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        # get_queryset already limits the selection to the tokens the user manages.
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
        # Suggestions: a year (clear it for a token that never expires), and
        # the requester as the user.
        initial.setdefault("expires_at", timezone.now() + timedelta(days=365))
        initial.setdefault("user", request.user.pk)
        return initial
