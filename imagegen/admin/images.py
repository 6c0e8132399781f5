"""The generated image admin: a thumbnail grid, review, reuse.

Reviewing goes through one endpoint, ``<id>/review/`` (POST: ``action``
save, approve, discard or restore, plus the ``title`` and ``alt_text``
typed and the ``decorative`` mark), used by the job page's per-image forms
(fetch, JSON answer) and by the image page's buttons (a plain form post, redirected back): what the
editor typed is saved with whatever button they press. Permissions are
checked by :func:`imagegen.services.reviews.review`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import permissions, services
from ..choices import AltTextDraftState, AspectRatio, Mode, ReviewStatus
from ..credentials import render_summary
from ..models import GeneratedImage
from ..serializers import image_name, review_image
from .display import thumbnail
from .object_actions import ObjectActionsMixin

#: What editors change on an image; saving writes only these columns.
EDITABLE_FIELDS = ("title", "alt_text", "decorative")


def posted_decorative(data: Any) -> bool | None:
    """The ``decorative`` checkbox as posted: None when the form did not
    show it editable (no ``decorative_shown``), so it is left as it is."""
    if "decorative_shown" not in data:
        return None
    return data.get("decorative", "") in ("1", "on", "true")


class GeneratedImageForm(forms.ModelForm):
    """The image page's form: a drafted alt text (``IMAGEGEN["DESCRIBER"]``)
    is put in the empty alt text input as a suggestion, marked as such; it
    becomes the image's alt text only when the editor saves or approves."""

    class Meta:
        model = GeneratedImage
        fields = EDITABLE_FIELDS
        labels = {"decorative": gettext_lazy("Decorative image (no alt text)")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        image, field = self.instance, self.fields.get("alt_text")
        if field is None or image.alt_text or image.decorative:
            return
        state = image.alt_text_draft_state
        if state == AltTextDraftState.READY and image.alt_text_draft:
            self.initial["alt_text"] = image.alt_text_draft
            field.widget.attrs.update({"class": "vLargeTextField is-draft", "data-draft": ""})
            field.help_text = _(
                "Drafted — check it: it is saved as the alt text only when you save or approve."
            )
        elif state == AltTextDraftState.PENDING:
            field.help_text = _("Drafting alt text… Reload the page to see the draft.")
        elif state == AltTextDraftState.FAILED:
            field.help_text = _("No draft could be made: describe the image yourself.")


@admin.register(GeneratedImage)
class GeneratedImageAdmin(ObjectActionsMixin, admin.ModelAdmin):
    list_display = ("preview_small", "name", "review_status", "job_link", "created_at")
    list_filter = ("review_status", "provider", "created_at")
    search_fields = ("prompt", "title", "alt_text")
    list_select_related = ("job",)
    list_per_page = 48
    change_list_template = "admin/imagegen/generatedimage/change_list.html"
    change_form_template = "admin/imagegen/generatedimage/change_form.html"
    form = GeneratedImageForm
    fieldsets = (
        (None, {"fields": ("preview", "title", "alt_text", "decorative", "review_status")}),
        (
            gettext_lazy("How it was made"),
            {
                "fields": (
                    "job_link",
                    "prompt",
                    "provider",
                    "model",
                    "settings_display",
                    "content_credentials",
                )
            },
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
        "settings_display",
        "content_credentials",
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
    actions = ["approve_images", "discard_images", "restore_images", "use_as_reference"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        context = {"title": _("Generated images"), **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[GeneratedImage]:
        return permissions.visible_images(request.user, super().get_queryset(request))

    @admin.display(description=gettext_lazy("name"))
    def name(self, image: GeneratedImage) -> str:
        return image_name(image)

    @admin.display(description=gettext_lazy("Content Credentials"))
    def content_credentials(self, image: GeneratedImage) -> str:
        """Whether the file's C2PA manifest validates, who made it, and its chain."""
        return render_summary(image)

    @admin.display(description=gettext_lazy("settings"))
    def settings_display(self, image: GeneratedImage) -> str:
        """The settings that made the image, as labelled values (not JSON)."""
        labels = {
            "mode": (_("Mode"), dict(Mode.choices)),
            "resolution": (_("Resolution"), {}),
            "aspect_ratio": (_("Aspect ratio"), dict(AspectRatio.choices)),
        }
        rows = []
        for key, value in (image.settings or {}).items():
            label, choices = labels.get(key, (key.replace("_", " ").capitalize(), {}))
            if isinstance(value, list | tuple):
                shown = ", ".join(map(str, value)) or "—"
            else:
                shown = choices.get(value, str(value).upper() if key == "resolution" else value)
            rows.append((label, shown))
        if not rows:
            return "—"
        return format_html(
            '<dl class="imagegen-settings">{}</dl>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows),
        )

    @admin.display(description=gettext_lazy("preview"))
    def preview(self, image: GeneratedImage) -> str:
        if not image.file:
            return _("Discarded: the file was deleted.")
        if image.is_discarded:
            return format_html(
                '<div class="imagegen-discarded">{}<p>{}</p></div>',
                thumbnail(image, size=400),
                _("Discarded: the file will be deleted shortly unless you undo it."),
            )
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
        return [
            path(
                "<int:image_id>/review/",
                self.admin_site.admin_view(self.review_view),
                name="imagegen_generatedimage_review",
            ),
            *self.object_action_urls(),
            *super().get_urls(),
        ]

    def review_view(self, request: HttpRequest, image_id: int) -> HttpResponse:
        """Save the typed title and alt text and apply ``action`` (POST).

        ``action``: ``save``, ``approve``, ``discard``, ``restore``, or
        ``reference`` (save, then open the generate form with the image as
        a reference, keeping its prompt and aspect ratio). Asked for JSON
        (the job page's script), it answers the image as the status JSON
        shows it, or ``{"error": reason}`` with 400/403/404; otherwise it
        redirects to ``next`` (a page of this site) or the image's page,
        with a message.
        """
        wants_json = "application/json" in request.headers.get("Accept", "")
        if request.method != "POST":
            return JsonResponse({"error": _("Only POST.")}, status=405, headers={"Allow": "POST"})
        image = permissions.visible_images(request.user).filter(pk=image_id).first()
        if image is None:
            return self._review_answer(
                request, wants_json, None, _("No such image."), messages.ERROR, 404
            )
        action = request.POST.get("action", "save")
        decision = "save" if action == "reference" else action
        title, alt_text = request.POST.get("title"), request.POST.get("alt_text")
        decorative = posted_decorative(request.POST)
        if (
            action in ("discard", "restore")
            and alt_text is not None
            and not image.alt_text
            and image.alt_text_draft
            and alt_text.strip() == image.alt_text_draft.strip()
        ):
            # The draft the input was showing, untouched: it stays a draft.
            alt_text = None
        try:
            if action == "reference" and not request.user.has_perm("imagegen.add_generationjob"):
                raise PermissionDenied(
                    _("Generating images needs the permission “Can add generation job”.")
                )
            unchanged = decorative in (None, image.decorative) and all(
                value is None or value.strip() == getattr(image, name)
                for name, value in (("title", title), ("alt_text", alt_text))
            )
            if action == "reference" and unchanged:
                result = None
            else:
                # A refused approval (REQUIRE_ALT_TEXT) keeps nothing typed either.
                with transaction.atomic():
                    result = services.reviews.review(
                        image,
                        user=request.user,
                        action=decision,
                        title=title,
                        alt_text=alt_text,
                        decorative=decorative,
                    )
        except PermissionDenied as exc:
            return self._review_answer(request, wants_json, image, str(exc), messages.ERROR, 403)
        except ValidationError as exc:
            image.refresh_from_db()
            text = " ".join(exc.messages)
            return self._review_answer(request, wants_json, image, text, messages.ERROR, 400)
        if action == "reference":
            if image.is_discarded:
                return self._review_answer(
                    request,
                    wants_json,
                    image,
                    _("Discarded images cannot be references."),
                    messages.WARNING,
                    400,
                )
            query = {"references": image.pk, "from": image.job_id}
            url = reverse("admin:imagegen_generationjob_add")
            return HttpResponseRedirect(f"{url}?{urlencode(query)}")
        assert result is not None
        level = messages.SUCCESS if result.changed else messages.INFO
        return self._review_answer(request, wants_json, result.image, result.message, level, 200)

    def _review_answer(
        self,
        request: HttpRequest,
        wants_json: bool,
        image: GeneratedImage | None,
        message: str,
        level: int,
        status: int,
    ) -> HttpResponse:
        if wants_json:
            body: dict[str, Any] = {"message": message}
            if status >= 400:
                body["error"] = message
            if image is not None:
                body["image"] = review_image(image, services.reviews.undo_until(image))
            return JsonResponse(body, status=status)
        self.message_user(request, message, level)
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = (
                reverse("admin:imagegen_generatedimage_change", args=[image.pk])
                if image is not None
                else reverse("admin:imagegen_generatedimage_changelist")
            )
        return HttpResponseRedirect(target)

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
        context: dict[str, Any] = {}
        if image is not None:
            context = {
                "title": _("Generated image"),
                "subtitle": image_name(image),
                "image_name": image_name(image),
                "image_actions": self._review_buttons(request, image),
                "review_url": reverse("admin:imagegen_generatedimage_review", args=[image.pk]),
            }
        return super().change_view(
            request, object_id, form_url, {**context, **(extra_context or {})}
        )

    def _review_buttons(self, request: HttpRequest, image: GeneratedImage) -> list[dict[str, Any]]:
        """The image page's buttons: each posts the page's form (so the
        title and alt text typed go with it) to the review endpoint."""
        user = request.user
        if image.is_discarded:
            entries = []
            if services.reviews.undo_until(image) and permissions.can_discard_image(user):
                entries.append(("restore", _("Undo discard")))
            return [{"action": a, "label": label} for a, label in entries]
        entries = []
        if image.review_status == ReviewStatus.NEW and permissions.can_review_image(user):
            entries.append(("approve", _("Approve")))
        if user.has_perm("imagegen.add_generationjob"):
            entries.append(("reference", _("Use as reference")))
        if permissions.can_discard_image(user):
            entries.append(("discard", _("Discard")))
        return [{"action": a, "label": label} for a, label in entries]

    @admin.action(description=gettext_lazy("Approve selected images"), permissions=["change"])
    def approve_images(self, request: HttpRequest, queryset: QuerySet[GeneratedImage]) -> None:
        done = refused = 0
        for image in queryset:
            try:
                done += services.reviews.approve(image, user=request.user)
            except ValidationError:  # REQUIRE_ALT_TEXT: no alt text, not decorative
                refused += 1
        skipped = queryset.count() - done - refused
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%d image needs alt text, or the decorative mark, before it is approved.",
                    "%d images need alt text, or the decorative mark, before they are approved.",
                    refused,
                )
                % refused,
                messages.WARNING,
            )
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
        outcome = Counter(
            services.reviews.discard(image, user=request.user, undo=True) for image in queryset
        )
        if outcome[True]:
            seconds = services.reviews.undo_seconds()
            text = (
                ngettext(
                    "%(n)d image discarded; its file is deleted in %(s)d seconds unless you "
                    "undo it (action “Undo discard”).",
                    "%(n)d images discarded; their files are deleted in %(s)d seconds unless "
                    "you undo it (action “Undo discard”).",
                    outcome[True],
                )
                if seconds
                else ngettext(
                    "%(n)d image discarded and its file deleted.",
                    "%(n)d images discarded and their files deleted.",
                    outcome[True],
                )
            )
            self.message_user(request, text % {"n": outcome[True], "s": seconds}, messages.SUCCESS)
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
        description=gettext_lazy("Undo discard of selected images"), permissions=["discard"]
    )
    def restore_images(self, request: HttpRequest, queryset: QuerySet[GeneratedImage]) -> None:
        outcome = Counter(services.reviews.restore(image, user=request.user) for image in queryset)
        if outcome[True]:
            self.message_user(
                request,
                ngettext("%d image restored.", "%d images restored.", outcome[True])
                % outcome[True],
                messages.SUCCESS,
            )
        if outcome[False]:
            self.message_user(
                request,
                ngettext(
                    "%d image was not discarded, or its file was already deleted.",
                    "%d images were not discarded, or their files were already deleted.",
                    outcome[False],
                )
                % outcome[False],
                messages.INFO,
            )

    @admin.action(
        description=gettext_lazy("Use as references for a new image"), permissions=["add_job"]
    )
    def use_as_reference(self, request: HttpRequest, queryset: QuerySet[GeneratedImage]) -> Any:
        kept = queryset.exclude(file="").exclude(review_status=ReviewStatus.DISCARDED)
        ids = list(kept.values_list("pk", flat=True))
        if not ids:
            self.message_user(
                request, _("Discarded images cannot be references."), messages.WARNING
            )
            return None
        query = {"references": ",".join(map(str, ids))}
        jobs = set(kept.values_list("job_id", flat=True))
        if len(jobs) == 1:
            # One job's images: keep its prompt and aspect ratio too.
            query["from"] = str(jobs.pop())
        url = reverse("admin:imagegen_generationjob_add")
        return HttpResponseRedirect(f"{url}?{urlencode(query)}")

    def has_add_job_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("imagegen.add_generationjob")
