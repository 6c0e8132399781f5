"""Breadcrumbs of imagegen's own admin pages (one include,
imagegen/includes/admin_breadcrumbs.html).

The family: the generate page (for a reader who may open the job list, and
for one who may only add jobs: the list then unlinked), the cost report, a
run's page and an image's page. Each shows Home, app, list and the page, the
list linked exactly when its reader may open it."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from imagegen.models import GenerationRun

from .factories import DOCUMENTED_EDITOR, make_image, make_job, make_user

pytestmark = pytest.mark.django_db
COSTS = "imagegen.view_cost_report"


def crumbs(response: Any) -> str:
    page = response.content.decode()
    start = page.index('<div class="breadcrumbs">')
    return page[start : page.index("</div>", start)]


@pytest.mark.parametrize(
    ("page", "perms", "linked_list", "here"),
    [
        ("generate", DOCUMENTED_EDITOR, "generationjob", "Generate image"),
        ("generate", ("imagegen.add_generationjob",), None, "Generate image"),
        ("costs", (*DOCUMENTED_EDITOR, COSTS), "generationjob", "Image generation costs"),
        ("run", DOCUMENTED_EDITOR, "generationrun", "Candidates "),
        ("image", DOCUMENTED_EDITOR, "generatedimage", "A red bicycle"),
    ],
    ids=["generate", "generate-add-only", "costs", "run", "image"],
)
def test_breadcrumbs(client, django_user_model, page, perms, linked_list, here):
    user = make_user(django_user_model, *perms)
    client.force_login(user)
    job = make_job(user)
    urls = {
        "generate": lambda: reverse("admin:imagegen_generationjob_add"),
        "costs": lambda: reverse("admin:imagegen_generationjob_costs"),
        "run": lambda: reverse(
            "admin:imagegen_generationrun_change",
            args=[GenerationRun.objects.create(kind="candidates", created_by=user).pk],
        ),
        "image": lambda: reverse(
            "admin:imagegen_generatedimage_change",
            args=[make_image(job, title="A red bicycle").pk],
        ),
    }
    response = client.get(urls[page]())
    assert response.status_code == 200
    shown = crumbs(response)
    assert f'<a href="{reverse("admin:index")}">' in shown
    assert f'<a href="{reverse("admin:app_list", args=["imagegen"])}">' in shown
    if linked_list:
        assert f'<a href="{reverse(f"admin:imagegen_{linked_list}_changelist")}">' in shown
    else:
        assert "changelist" not in shown and "/imagegen/generationjob/" not in shown
        assert "Generation jobs" in shown
    assert shown.rsplit("&rsaquo; ", 1)[1].startswith(here), shown
