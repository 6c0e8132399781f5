"""``{% job_lineage job %}``: a job's lineage, both ways, for its admin page.

Only jobs the reader may see are linked (:func:`imagegen.permissions.visible_jobs`).
"""

from __future__ import annotations

from typing import Any

from django import template

from .. import permissions
from ..models import GenerationJob
from ..services.runs import lineage

register = template.Library()


@register.inclusion_tag("imagegen/includes/lineage.html", takes_context=True)
def job_lineage(context: dict[str, Any], job: GenerationJob) -> dict[str, Any]:
    """Render imagegen/includes/lineage.html for ``job`` as the request's user sees it."""
    request = context.get("request")
    user = getattr(request, "user", None)
    visible = permissions.visible_jobs(user) if user is not None else GenerationJob.objects.none()
    return {"job": job, "lineage": lineage(job, visible, user)}
