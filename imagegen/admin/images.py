"""The generated image admin: a thumbnail grid, review, reuse."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import permissions, services
from ..choices import ReviewStatus
from ..models import GeneratedImage
from .display import thumbnail
from .object_actions import ObjectActionsMixin

#: What editors change on an image; saving writes only these columns.
EDITABLE_FIELDS = ("title", "alt_text")


@admin.register(GeneratedImage)
class GeneratedImageAdmin(ObjectActionsMixin, admin.ModelAdmin):
    list_display = ("preview_small", "__str__", "review_status", "job_link", "created_at")
    list_filter = ("review_status", "provider", "created_at")
    search_fields = ("prompt", "title", "alt_text")
    list_select_related = ("job",)
    list_per_page = 48
    change_list_template = "admin/imagegen/generatedimage/change_list.html"
    change_form_template = "admin/imagegen/generatedimage/change_form.html"
    fieldsets = (
        (None, {"fields": ("preview", "title", "alt_text", "review_status")}),
        (
            gettext_lazy("How it was made"),
            {"fields": ("job_link", "prompt", "provider", "model", "settings")},
        ),
        (
            gettext_lazy("File"),
            {
                "classes": ("collapse",),
                "fields": ("file", "width", "height", "size", "content_type", "sha256"),
            },
        ),
        (
            gettext_lazy("Review"),
            {"classes": ("collapse",), "fields": ("reviewed_by", "reviewed_at", "created_at")},
        ),
    )
    readonly_fields = (
        "preview",
        "review_status",
        "job_link",
        "prompt",
        "provider",
        "model",
        "settings",
        "file",
        "width",
        "height",
        "size",
        "content_type",
        "sha256",
        "reviewed_by",
        "reviewed_at",
        "created_at",
    )
    actions = ["approve_images", "discard_images", "use_as_reference"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        context = {"title": _("Generated images"), **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[GeneratedImage]:
        return permissions.visible_images(request.user, super().get_queryset(request))

    @admin.display(description=gettext_lazy("preview"))
    def preview(self, image: GeneratedImage) -> str:
        if not image.file:
            return _("Discarded: the file was deleted.")
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            image.file.url,
            thumbnail(image, size=400),
        )

    @admin.display(description=gettext_lazy("preview"))
    def preview_small(self, image: GeneratedImage) -> str:
        return thumbnail(image, size=64)

    @admin.display(description=gettext_lazy("job"))
    def job_link(self, image: GeneratedImage) -> str:
        url = reverse("admin:imagegen_generationjob_change", args=[image.job_id])
        return format_html('<a href="{}">{}</a>', url, image.job)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the row would leave its file behind; "discard" deletes both.
        return False

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("imagegen.delete_generatedimage")

    def get_urls(self) -> list[Any]:
        return [*self.object_action_urls(), *super().get_urls()]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Only the editable columns: a full save would write back the file,
        # preview and review status as they were read, undoing a preview made
        # or a discard done meanwhile.
        if change:
            obj.save(update_fields=EDITABLE_FIELDS)
        else:
            super().save_model(request, obj, form, change)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        image = self.get_object(request, object_id)
        buttons = []
        if image is not None and not image.is_discarded:
            entries = [
                ("use_as_reference", _("Use as reference")),
                ("discard_images", _("Discard")),
            ]
            if image.review_status == ReviewStatus.NEW:
                entries.insert(0, ("approve_images", _("Approve")))
            buttons = [
                self.object_action_button(image, name, label)
                for name, label in entries
                if self.object_action_allowed(request, name)
            ]
        context = {"image_actions": buttons, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    @admin.action(description=gettext_lazy("Approve selected images"), permissions=["change"])
    def approve_images(self, request: HttpRequest, queryset: QuerySet[GeneratedImage]) -> None:
        done = sum(services.reviews.approve(image, user=request.user) for image in queryset)
        skipped = queryset.count() - done
        if done:
            self.message_user(
                request,
                ngettext("%d image approved.", "%d images approved.", done) % done,
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%d image was already approved or discarded.",
                    "%d images were already approved or discarded.",
                    skipped,
                )
                % skipped,
                messages.INFO,
            )

    @admin.action(
        description=gettext_lazy("Discard selected images (deletes their files)"),
        permissions=["discard"],
    )
    def discard_images(self, request: HttpRequest, queryset: QuerySet[GeneratedImage]) -> None:
        outcome = Counter(services.reviews.discard(image, user=request.user) for image in queryset)
        if outcome[True]:
            self.message_user(
                request,
                ngettext(
                    "%d image discarded and its file deleted.",
                    "%d images discarded and their files deleted.",
                    outcome[True],
                )
                % outcome[True],
                messages.SUCCESS,
            )
        if outcome[False]:
            self.message_user(
                request,
                ngettext(
                    "%d image was already discarded.",
                    "%d images were already discarded.",
                    outcome[False],
                )
                % outcome[False],
                messages.INFO,
            )

    @admin.action(
        description=gettext_lazy("Use as references for a new image"), permissions=["add_job"]
    )
    def use_as_reference(self, request: HttpRequest, queryset: QuerySet[GeneratedImage]) -> Any:
        ids = list(queryset.exclude(file="").values_list("pk", flat=True))
        if not ids:
            self.message_user(
                request, _("Discarded images cannot be references."), messages.WARNING
            )
            return None
        url = reverse("admin:imagegen_generationjob_add")
        return HttpResponseRedirect(f"{url}?{urlencode({'references': ','.join(map(str, ids))})}")

    def has_add_job_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("imagegen.add_generationjob")
