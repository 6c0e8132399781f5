"""``{% imagegen_filer_draft %}``: on filer's image page, the alt text draft
of an image imagegen made, offered in the ``default_alt_text`` input
(``admin/filer/image/change_form.html``)."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.urls import reverse

from imagegen.draft_fields import draft_note

from ..admin import ALT_TEXT_ATTRIBUTE, DRAFT_NOTES
from ..models import GeneratedFilerImage

register = template.Library()


@register.simple_tag(takes_context=True)
def imagegen_filer_draft(context: Any) -> str:
    """The draft's note and script for the page's image (``original``) and
    form: nothing for an image imagegen did not make, a form without the
    alt text field, or a draft with nothing to say
    (:func:`imagegen.draft_fields.draft_note`). The script puts a ready
    draft in the empty input, marked; it is saved only when the editor
    saves the form."""
    original, adminform = context.get("original"), context.get("adminform")
    form = getattr(adminform, "form", None)
    if original is None or form is None or ALT_TEXT_ATTRIBUTE not in form.fields:
        return ""
    link = GeneratedFilerImage.objects.filter(image_id=original.pk).first()
    state = draft_note(link, form[ALT_TEXT_ATTRIBUTE].value(), bound=form.is_bound)
    if not state:
        return ""
    request = context.get("request")
    user = getattr(request, "user", None)
    # imagegen's page for the image, where the draft is also shown: for those who may open it.
    may_open = user is not None and any(
        user.has_perm(f"imagegen_filer.{action}_generatedfilerimage")
        for action in ("view", "change")
    )
    return render_to_string(
        "imagegen_filer/draft_note.html",
        {
            "state": state,
            "note": DRAFT_NOTES[state],
            "field": form[ALT_TEXT_ATTRIBUTE].html_name,
            "draft": link.alt_text_draft if state == "ready" else "",
            "link_label": GeneratedFilerImage._meta.verbose_name,
            "link_url": (
                reverse("admin:imagegen_filer_generatedfilerimage_change", args=[link.pk])
                if may_open
                else ""
            ),
        },
        request=request,
    )
