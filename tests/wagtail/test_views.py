"""The Wagtail admin's "Generate image": the page, the chooser step, the job
page and status JSON, and who may use them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import reverse
from wagtail.images import get_image_model
from wagtail.models import Collection

from imagegen.choices import Status
from imagegen.contrib.wagtail.models import GeneratedWagtailImage
from imagegen.contrib.wagtail.wagtail_hooks import register_generate_menu_item
from imagegen.models import GenerationJob

from ..factories import make_job
from .conftest import grant_images, make_wagtail_user, png_bytes

pytestmark = pytest.mark.django_db

GENERATE = "/admin/imagegen/"
CHOOSER = "/admin/imagegen/chooser/"


def post_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "prompt": "A red kite over the dunes",
        "mode": "text-to-image",
        "resolution": "2k",
        "aspect_ratio": "16:9",
        "reference_urls": "",
        "provider": "sandbox",
        "collection": Collection.get_first_root_node().pk,
        "idempotency_key": "wagtail:test-key",
    }
    data.update(overrides)
    return data


def modal(response: Any) -> dict[str, Any]:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def linked_image(job: GenerationJob, index: int = 0) -> Any:
    from django.core.files.base import ContentFile

    image = get_image_model()(
        title=job.prompt, file=ContentFile(png_bytes(), name=f"{job.pk}-{index}.png")
    )
    image.save()
    GeneratedWagtailImage.objects.create(job=job, index=index, image=image)
    return image


# The page --------------------------------------------------------------------


def test_generate_page_shows_form_price_and_collections(client, wagtail_editor):
    generated = Collection.get_first_root_node().add_child(instance=Collection(name="Generated"))
    client.force_login(wagtail_editor)
    response = client.get(GENERATE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="imagegen-generate-form"' in html
    assert 'id="imagegen-price"' in html
    assert "imagegen/admin/generate.js" in html
    assert "imagegen/admin/imagegen.css" in html
    pricing = json.loads(
        html.split('id="imagegen-pricing" type="application/json">')[1].split("</script>")[0]
    )
    assert pricing["prices"]["sandbox"] == {"1k": "0.02", "2k": "0.04", "4k": "0.08"}
    form = response.context["form"]
    # References come from the image library (and imagegen's results): library.py.
    assert form.fields["reference_images"].widget.items == []
    # The configured collection (tests.wagtail_settings: "Generated") is preselected.
    assert form.fields["collection"].initial == generated.pk
    assert set(form.fields["collection"].queryset) == set(Collection.objects.all())


def test_generate_page_shows_budgets(client, wagtail_editor, settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"USER_DAILY": "0.05"}}
    client.force_login(wagtail_editor)
    html = client.get(GENERATE).content.decode()
    assert "0.05 of 0.05 USD left" in html


def test_post_creates_job_for_the_collection(client, wagtail_editor):
    root = Collection.get_first_root_node()
    client.force_login(wagtail_editor)
    response = client.post(GENERATE, post_data())
    job = GenerationJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("imagegen_wagtail:job", args=[job.pk])
    assert (job.prompt, job.resolution, job.aspect_ratio) == (
        "A red kite over the dunes",
        "2k",
        "16:9",
    )
    assert job.created_by == wagtail_editor
    assert job.target == root
    assert job.status == Status.QUEUED

    # The same form posted again (a double click) makes no second job.
    client.post(GENERATE, post_data())
    assert GenerationJob.objects.count() == 1

    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-status-url="/admin/imagegen/jobs/{job.pk}/status/"' in html
    assert "imagegen_wagtail/progress.js" in html
    assert f"?from={job.pk}" in html


def test_post_errors_and_budget_refusal_stay_on_the_form(client, wagtail_editor, settings):
    client.force_login(wagtail_editor)
    response = client.post(GENERATE, post_data(prompt=""))
    assert response.status_code == 200
    assert response.context["form"].errors["prompt"]

    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"USER_DAILY": "0.05"}}
    response = client.post(GENERATE, post_data(resolution="4k"))
    assert response.status_code == 200
    assert "your daily budget" in response.content.decode()
    assert GenerationJob.objects.count() == 0


def test_collection_must_be_one_the_user_may_add_to(client, django_user_model):
    root = Collection.get_first_root_node()
    mine = root.add_child(instance=Collection(name="Mine"))
    theirs = root.add_child(instance=Collection(name="Theirs"))
    user = make_wagtail_user(django_user_model, "scoped", images=())
    grant_images(user, "add", "choose", collection=mine)
    client.force_login(user)
    form = client.get(GENERATE).context["form"]
    assert list(form.fields["collection"].queryset) == [mine]
    response = client.post(GENERATE, post_data(collection=theirs.pk))
    assert response.status_code == 200 and response.context["form"].errors["collection"]
    assert GenerationJob.objects.count() == 0


def test_generate_again_prefills(client, wagtail_editor):
    job = make_job(wagtail_editor, prompt="Again, please", resolution="4k")
    client.force_login(wagtail_editor)
    form = client.get(f"{GENERATE}?from={job.pk}").context["form"]
    assert form.initial["prompt"] == "Again, please"
    assert form.initial["resolution"] == "4k"


# Permissions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("imagegen", "images", "reason"),
    [
        ((), ("add", "choose"), "“Can add generation job”"),
        (("imagegen.add_generationjob",), (), "permission to add images"),
        (("imagegen.add_generationjob",), ("choose",), "permission to add images"),
    ],
)
def test_refusals(client, django_user_model, imagegen, images, reason):
    user = make_wagtail_user(django_user_model, "limited", imagegen=imagegen, images=images)
    client.force_login(user)

    response = client.get(GENERATE)
    assert response.status_code == 403
    assert reason in response.content.decode()
    response = client.post(GENERATE, post_data())
    assert response.status_code == 403

    step = modal(client.get(CHOOSER))
    assert 'id="imagegen-refused"' in step["html"]
    assert "imagegen-generate-form" not in step["html"]
    assert modal(client.post(CHOOSER, post_data()))["html"].count("imagegen-generate-form") == 0
    assert GenerationJob.objects.count() == 0

    chooser = modal(client.get(reverse("wagtailimages_chooser:choose")))
    assert "data-imagegen-generate" not in chooser["html"]
    request = RequestFactory().get("/admin/")
    request.user = user
    assert not register_generate_menu_item().is_shown(request)


def test_chooser_needs_choose_permission_too(client, django_user_model):
    user = make_wagtail_user(django_user_model, "adder", images=("add",))
    client.force_login(user)
    assert client.get(GENERATE).status_code == 200
    assert "to add and to choose images" in modal(client.get(CHOOSER))["html"]


def test_menu_item_for_editors(rf, wagtail_editor):
    request = rf.get("/admin/")
    request.user = wagtail_editor
    item = register_generate_menu_item()
    assert item.is_shown(request)
    assert item.url == GENERATE


# The image chooser ------------------------------------------------------------------


def test_image_chooser_has_the_generate_button(client, wagtail_editor):
    client.force_login(wagtail_editor)
    step = modal(client.get(reverse("wagtailimages_chooser:choose") + "?select_format=true"))
    assert step["step"] == "choose"
    html = step["html"]
    assert "data-imagegen-generate" in html
    button = html.split("data-imagegen-generate")[0].rsplit("<a ", 1)[1]
    assert 'href="/admin/imagegen/chooser/?select_format=true"' in button
    assert "data-chooser-modal-choice" in button
    # Wagtail's own chooser is all there.
    assert 'id="search-results"' in html


def test_chooser_step_form(client, wagtail_editor):
    client.force_login(wagtail_editor)
    step = modal(client.get(CHOOSER + "?select_format=true"))
    assert step["step"] == "choose"
    html = step["html"]
    assert "data-chooser-modal-creation-form" in html
    assert 'action="/admin/imagegen/chooser/?select_format=true"' in html
    assert 'id="imagegen-price"' in html and 'id="imagegen-pricing"' in html
    assert "imagegen/admin/generate.js" in html
    # Wagtail's chooser script refuses forms with `required` inputs outside its markup.
    assert " required" not in html.split("data-chooser-modal-creation-form")[1].split("</form>")[0]


def test_chooser_post_starts_job_and_follows_it(client, wagtail_editor):
    client.force_login(wagtail_editor)
    step = modal(client.post(CHOOSER + "?select_format=true", post_data()))
    job = GenerationJob.objects.get()
    assert job.created_by == wagtail_editor
    assert step["step"] == "choose"
    html = step["html"]
    assert f'data-status-url="/admin/imagegen/jobs/{job.pk}/status/"' in html
    assert "imagegen_wagtail/progress.js" in html and "imagegen_wagtail/chooser.js" in html
    # The job ends on the confirm step (title, alt text), which leads to Wagtail's
    # "chosen" step (test_confirm.py); the chooser's parameters are carried along.
    confirm = "/admin/imagegen/chooser/images/{id}/confirm/"
    assert f'data-url-template="{confirm}?select_format=true"' in html

    plain = modal(client.post(CHOOSER, post_data(idempotency_key="wagtail:other")))
    assert f'data-url-template="{confirm}"' in plain["html"]
    multiple = modal(client.post(CHOOSER + "?multiple=1", post_data(idempotency_key="wagtail:m")))
    assert f'data-url-template="{confirm}?multiple=1"' in multiple["html"]


def test_chooser_post_with_errors_shows_the_form_again(client, wagtail_editor):
    client.force_login(wagtail_editor)
    html = modal(client.post(CHOOSER, post_data(prompt="")))["html"]
    assert "data-chooser-modal-creation-form" in html
    assert "error" in html
    assert GenerationJob.objects.count() == 0


# Status JSON --------------------------------------------------------------------


def test_status_json_lists_the_wagtail_images(client, wagtail_editor):
    job = make_job(wagtail_editor, status=Status.SUCCEEDED)
    image = linked_image(job)
    client.force_login(wagtail_editor)
    response = client.get(reverse("imagegen_wagtail:status", args=[job.pk]))
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    data = response.json()
    assert data["status"] == "succeeded" and data["is_terminal"] is True
    assert data["progress"] == 1.0
    # What the job page says beyond the status (imagegen.job_states), as the Django admin's.
    assert (data["waiting_retry"], data["refused_by_moderation"]) == (None, False)
    assert data["cancel_may_charge"] is True
    [entry] = data["images"]
    assert entry["id"] == image.pk
    assert entry["edit_url"] == reverse("wagtailimages:edit", args=[image.pk])
    assert "max-165x165" in entry["thumbnail_url"] or entry["thumbnail_url"].endswith(".png")

    page = client.get(reverse("imagegen_wagtail:job", args=[job.pk])).content.decode()
    assert f'data-image-id="{image.pk}"' in page


def test_status_json_of_own_jobs_needs_no_view_permission(client, django_user_model):
    user = make_wagtail_user(django_user_model, "creator", imagegen=("imagegen.add_generationjob",))
    other = make_wagtail_user(django_user_model, "other")
    mine = make_job(user, status=Status.RUNNING)
    theirs = make_job(other, status=Status.RUNNING)
    client.force_login(user)
    assert client.get(reverse("imagegen_wagtail:status", args=[mine.pk])).status_code == 200
    assert client.get(reverse("imagegen_wagtail:status", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("imagegen_wagtail:job", args=[theirs.pk])).status_code == 404


def test_views_need_the_wagtail_admin(client, django_user_model):
    outsider = django_user_model.objects.create_user("outsider", password="x")
    client.force_login(outsider)
    response = client.get(GENERATE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
