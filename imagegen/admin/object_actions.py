"""Buttons on a change page that run a list action on that one object."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST


class ObjectActionsMixin:
    """Serve ``<pk>/actions/<action>/`` (POST) for a ModelAdmin's own actions.

    The button runs exactly the list action, with its permission checks, on
    a queryset of the one object, so a page button and a list action cannot
    drift apart. The object must be in ``get_queryset`` (what the user may
    see), else 404.
    """

    def object_action_urls(self: Any) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/actions/<slug:action>/",
                self.admin_site.admin_view(require_POST(self.object_action_view)),
                name="{}_{}_action".format(*info),
            )
        ]

    def object_action_url(self: Any, obj: Any, action: str) -> str:
        info = self.opts.app_label, self.opts.model_name
        return reverse("admin:{}_{}_action".format(*info), args=[obj.pk, action])

    def object_action_button(
        self: Any, obj: Any, action: str, label: str, **extra: Any
    ) -> dict[str, Any]:
        """What a change-page template needs to draw the button for ``action``."""
        return {"name": action, "label": label, "url": self.object_action_url(obj, action), **extra}

    def object_action_func(self: Any, action: str) -> Any:
        """The function of list action ``action``: Django 6.1's ``get_action``
        gives an ``Action`` (indexing it is deprecated), 5.2's a tuple."""
        found = self.get_action(action)
        return found.func if hasattr(found, "func") else found[0]

    def object_action_allowed(self: Any, request: HttpRequest, action: str) -> bool:
        """Whether ``request.user`` has the permissions the action declares."""
        func = self.object_action_func(action)
        needed = getattr(func, "allowed_permissions", ())
        return all(getattr(self, f"has_{p}_permission")(request) for p in needed)

    def object_action_view(
        self: Any, request: HttpRequest, object_id: str, action: str
    ) -> HttpResponse:
        if action not in self.actions:
            raise Http404
        if not self.object_action_allowed(request, action):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        func = self.object_action_func(action)
        response = func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        if response is not None:
            return response
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
