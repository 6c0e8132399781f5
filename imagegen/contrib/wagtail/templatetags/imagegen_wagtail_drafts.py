"""``{% imagegen_description_draft %}``: on Wagtail's image edit page, the
alt text draft of an image imagegen made, offered in the description input
(``wagtailimages/images/edit.html``)."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.urls import reverse

from imagegen.draft_fields import draft_note

from ..models import GeneratedWagtailImage
from ..views import may_watch

register = template.Library()

#: The image form's field that is Wagtail's alt text.
FIELD = "description"


@register.simple_tag(takes_context=True)
def imagegen_description_draft(context: Any) -> str:
    """The draft's note and script for the page's ``image`` and ``form``:
    nothing for an image imagegen did not make, a form without a
    description, or a draft with nothing to say (:func:`imagegen.draft_fields.draft_note`).
    A ready draft is put in the empty description input by the script,
    marked; it is saved only when the editor saves the form. While pending,
    the script reads the job's status (when the editor may follow the job)
    until the draft is in."""
    image, form, request = context.get("image"), context.get("form"), context.get("request")
    if image is None or form is None or request is None or FIELD not in form.fields:
        return ""
    link = GeneratedWagtailImage.objects.filter(image=image).select_related("job").first()
    state = draft_note(link, form[FIELD].value(), bound=form.is_bound)
    if not state:
        return ""
    # Read while pending, by an editor who may follow the job (its status answers 404 to others).
    watch = state == "pending" and may_watch(request.user, link.job)
    return render_to_string(
        "imagegen_wagtail/includes/description_draft.html",
        {
            "image": image,
            "state": state,
            "field": form[FIELD].html_name,
            "draft": link.alt_text_draft if state == "ready" else "",
            "status_url": reverse("imagegen_wagtail:status", args=[link.job_id]) if watch else "",
        },
        request=request,
    )
