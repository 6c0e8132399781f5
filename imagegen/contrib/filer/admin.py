"""The Django admin page where an editor confirms a generated filer image's
alt text: "Generated filer images" (:class:`~.models.GeneratedFilerImage`).

filer's own image page has no place for imagegen's draft, so this page
shows the image, its job and where drafting stands, and an **Alt text**
input: the image's ``default_alt_text``, or, while that is empty, the
drafted alt text marked "Drafted — check it". Saving the page saves the
input as the image's ``default_alt_text``
(:func:`imagegen.services.alt_text.confirm_linked`); nothing else writes it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.validators import MaxLengthValidator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from imagegen import permissions
from imagegen.choices import AltTextDraftState
from imagegen.draft_fields import draft_note
from imagegen.services import alt_text

from .models import GeneratedFilerImage

#: filer's image field that holds the alt text.
ALT_TEXT_ATTRIBUTE = "default_alt_text"
#: Beside the alt text input, by where the draft stands
#: (:func:`imagegen.draft_fields.draft_note`): the Django admin's words.
DRAFT_NOTES = {
    "ready": _("Drafted — check it: it is saved as the alt text only when you save or approve."),
    "pending": _("Drafting alt text… Reload the page to see the draft."),
    "failed": _("No draft could be made: describe the image yourself."),
}


class GeneratedFilerImageForm(forms.ModelForm):
    """The page's one input: the filer image's alt text, or the ready draft
    as a suggestion (marked) while it has none."""

    alt_text = forms.CharField(
        label=_("Alt text"),
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
        help_text=_("What the image shows, for people who cannot see it."),
    )

    class Meta:
        model = GeneratedFilerImage
        fields = ("alt_text",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        link, field = self.instance, self.fields["alt_text"]
        image = link.image
        limit = alt_text.alt_text_limit(type(image)._meta.get_field(ALT_TEXT_ATTRIBUTE))
        field.validators.append(MaxLengthValidator(limit))
        field.widget.attrs["maxlength"] = str(limit)
        # filer allows NULL there.
        current = getattr(image, ALT_TEXT_ATTRIBUTE) or ""
        self.initial["alt_text"] = current
        note = draft_note(link, current, bound=self.is_bound)
        if note == "ready":
            self.initial["alt_text"] = link.alt_text_draft
            field.widget.attrs.update({"class": "vLargeTextField is-draft", "data-draft": ""})
        if note:
            field.help_text = DRAFT_NOTES[note]


@admin.register(GeneratedFilerImage)
class GeneratedFilerImageAdmin(admin.ModelAdmin):
    """Generated filer images: each one's job and its alt text, confirmed here.

    Listed for the jobs the user may see; changing needs this model's change
    permission and filer's edit permission on the image."""

    form = GeneratedFilerImageForm
    list_display = ("image_name", "job_link", "alt_text_draft_state", "has_alt_text")
    list_filter = ("alt_text_draft_state",)
    list_select_related = ("image", "job")
    fieldsets = (
        (None, {"fields": ("preview", "filer_image", "alt_text", "draft")}),
        (_("How it was made"), {"fields": ("job_link", "index")}),
    )
    readonly_fields = ("preview", "filer_image", "draft", "job_link", "index")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request).select_related("image", "job")
        return queryset.filter(job__in=permissions.visible_jobs(request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # finalize makes the links

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the image in filer deletes its link; the link alone, never.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and (
            obj is None or obj.image.has_edit_permission(request)
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # The link itself has nothing to save: the input is the image's alt text.
        alt_text.confirm_linked(
            obj, alt_text=form.cleaned_data["alt_text"], attribute=ALT_TEXT_ATTRIBUTE
        )

    @admin.display(description=_("Image"))
    def image_name(self, link: GeneratedFilerImage) -> str:
        return str(link.image)

    @admin.display(description=_("Preview"))
    def preview(self, link: GeneratedFilerImage) -> str:
        return format_html(
            '<a href="{0}" target="_blank" rel="noopener"><img src="{0}" alt="" '
            'style="max-width: 400px; max-height: 400px"></a>',
            link.image.url,
        )

    @admin.display(description=_("In filer"))
    def filer_image(self, link: GeneratedFilerImage) -> str:
        return format_html('<a href="{}">{}</a>', link.image.get_admin_change_url(), link.image)

    @admin.display(description=_("Drafted alt text"))
    def draft(self, link: GeneratedFilerImage) -> str:
        if link.alt_text_draft_state == AltTextDraftState.READY:
            return format_html(
                "{} <q>{}</q>", link.get_alt_text_draft_state_display(), link.alt_text_draft
            )
        return link.get_alt_text_draft_state_display()

    @admin.display(description=_("Job"))
    def job_link(self, link: GeneratedFilerImage) -> str:
        url = reverse("admin:imagegen_generationjob_change", args=[link.job_id])
        return format_html('<a href="{}">{}</a>', url, link.job)

    @admin.display(description=_("Alt text"), boolean=True)
    def has_alt_text(self, link: GeneratedFilerImage) -> bool:
        return bool((getattr(link.image, ALT_TEXT_ATTRIBUTE) or "").strip())
