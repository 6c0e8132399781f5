"""Who may generate Wagtail images: Wagtail's image permission policy and
imagegen's job permission, both required.

Generating makes a job (``imagegen.add_generationjob``, which also puts the
cost against the user's budgets) and adds an image to a collection (the image
policy's ``add`` action in that collection). From the chooser the new image is
also chosen, which needs ``choose`` in the same collection.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from wagtail.images import get_image_model
from wagtail.models import Collection

ADD_JOB = "imagegen.add_generationjob"


def image_policy() -> Any:
    """The permission policy of the site's image model."""
    try:
        from wagtail.permissions import policy_registry
    except ImportError:  # Wagtail 7.0 has no registry yet
        from wagtail.images.permissions import permission_policy

        return permission_policy
    return policy_registry.get_by_type(get_image_model())


def generating_collections(user: Any, *, choose: bool = False) -> QuerySet[Collection]:
    """Collections ``user`` may add generated images to (and choose from, with ``choose``)."""
    policy = image_policy()
    collections = policy.collections_user_has_permission_for(user, "add")
    if choose:
        choosable = policy.collections_user_has_permission_for(user, "choose")
        collections = collections.filter(pk__in=choosable.values("pk"))
    return collections.order_by("path")


def refusal(user: Any, *, choose: bool = False) -> str | None:
    """Why ``user`` may not generate images here, or None if they may."""
    if not user.is_active or not user.has_perm(ADD_JOB):
        return _(
            "Generating images needs the permission “Can add generation job” "
            "(Image generation). Ask an administrator for it."
        )
    if not generating_collections(user, choose=choose).exists():
        if choose:
            return _(
                "Generating images here needs permission to add and to choose images "
                "in at least one collection. Ask an administrator for it."
            )
        return _(
            "Generating images needs permission to add images to at least one "
            "collection. Ask an administrator for it."
        )
    return None


def may_generate(user: Any, *, choose: bool = False) -> bool:
    return refusal(user, choose=choose) is None
