"""The generated image admin through the test client: the grid, review
(approve, discard), editing, reuse as references, and every refusal."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from imagegen import services
from imagegen.choices import Mode, ReviewStatus
from imagegen.models import GeneratedImage, GenerationJob
from imagegen.storage import get_storage

from .factories import (
    make_editor,
    make_image,
    make_job,
    make_user,
    messages_of,
    run_admin_action,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:imagegen_generatedimage_changelist"
ADD_JOB = "admin:imagegen_generationjob_add"


def change_url(image: GeneratedImage) -> str:
    return reverse("admin:imagegen_generatedimage_change", args=[image.pk])


def action_url(image: GeneratedImage, action: str) -> str:
    return reverse("admin:imagegen_generatedimage_action", args=[image.pk, action])


def offered_actions(response: Any) -> list[str]:
    form = response.context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices if name]


def with_preview(image: GeneratedImage) -> GeneratedImage:
    """``image`` with a stored preview, named as the preview task names it."""
    from django.core.files.base import ContentFile

    from imagegen.services.thumbnails import thumbnail_name

    name = get_storage().save(thumbnail_name(image.file.name), ContentFile(b"RIFF-webp"))
    GeneratedImage.objects.filter(pk=image.pk).update(thumbnail=name)
    image.refresh_from_db()
    return image


def review_url(image: GeneratedImage) -> str:
    return reverse("admin:imagegen_generatedimage_review", args=[image.pk])


@pytest.fixture
def image(editor: Any) -> GeneratedImage:
    return make_image(make_job(editor))


@pytest.fixture(params=["list", "button"])
def act(request: Any, client: Any) -> Any:
    """Run an image action as a list action or as the change page's button."""

    def run(action: str, *images: GeneratedImage, follow: bool = True, query: str = "") -> Any:
        changelist = reverse(CHANGELIST) + query
        return run_admin_action(
            client, request.param, changelist, action_url, action, images, follow=follow
        )

    run.kind = request.param
    return run


class TestGrid:
    def test_editor_sees_only_their_own_images(self, logged_in, editor, other):
        mine = make_image(make_job(editor))
        make_image(make_job(other))
        response = logged_in.get(reverse(CHANGELIST))
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [mine]

    def test_view_all_jobs_sees_everyones(self, client, django_user_model, editor, other):
        images = {make_image(make_job(editor)), make_image(make_job(other))}
        client.force_login(make_editor(django_user_model, "imagegen.view_all_jobs"))
        assert set(client.get(reverse(CHANGELIST)).context["cl"].result_list) == images

    def test_grid_shows_thumbnails(self, logged_in, editor):
        previewed = with_preview(make_image(make_job(editor), index=0, size=(800, 600)))
        html = logged_in.get(reverse(CHANGELIST)).content.decode()
        assert f'src="{previewed.preview_url}"' in html

    @pytest.mark.parametrize("title", ["Harbour at dawn", ""])
    def test_images_are_named_by_title_else_prompt_never_by_path(self, logged_in, editor, title):
        """Family: an image with a title, one without (named by its prompt's
        start): the list, the page's title and breadcrumbs show that name,
        never the storage path."""
        prompt = "a red bicycle " * 10
        image = make_image(make_job(editor, prompt=prompt), title=title)
        expected = title or prompt.strip()[:59] + "…"
        listing = logged_in.get(reverse(CHANGELIST)).content.decode()
        page = logged_in.get(change_url(image)).content.decode()
        for html in (listing, page.split('id="content-main"')[0]):
            assert image.file.name not in html.replace(image.file.url, "")
        assert page.count(expected) >= 2  # title and breadcrumbs

    def test_query_count_does_not_grow_with_the_number_of_images(
        self, client, django_user_model, editor, other
    ):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client.force_login(make_editor(django_user_model, "imagegen.view_all_jobs"))

        def count_queries() -> int:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse(CHANGELIST)).status_code == 200
            return len(queries)

        make_image(make_job(editor))
        few = count_queries()
        for i in range(12):
            make_image(make_job(other if i % 2 else editor, prompt=f"image {i}"))
        assert count_queries() == few

    def test_discarded_image_shows_a_placeholder(self, logged_in, editor):
        image = make_image(make_job(editor), review_status=ReviewStatus.DISCARDED, file="")
        response = logged_in.get(reverse(CHANGELIST))
        html = response.content.decode()
        assert image in response.context["cl"].result_list
        assert "imagegen-card is-discarded" in html
        assert "<img" not in html.split('id="result_list"', 1)[1].split("</form>", 1)[0]

    def test_filter_by_review_status_and_search(self, logged_in, editor):
        job = make_job(editor)
        approved = make_image(job, index=0, review_status=ReviewStatus.APPROVED, title="Harbour")
        make_image(job, index=1)
        response = logged_in.get(reverse(CHANGELIST), {"review_status__exact": "approved"})
        assert list(response.context["cl"].result_list) == [approved]
        response = logged_in.get(reverse(CHANGELIST), {"q": "harbour"})
        assert list(response.context["cl"].result_list) == [approved]

    def test_no_add_and_no_delete(self, logged_in, image):
        assert logged_in.get(reverse("admin:imagegen_generatedimage_add")).status_code == 403
        delete = reverse("admin:imagegen_generatedimage_delete", args=[image.pk])
        assert logged_in.post(delete, {"post": "yes"}).status_code == 403
        assert GeneratedImage.objects.filter(pk=image.pk).exists()
        assert "delete_selected" not in offered_actions(logged_in.get(reverse(CHANGELIST)))


def button_actions(response: Any) -> list[str]:
    return [b["action"] for b in response.context["image_actions"]]


class TestChangePage:
    def test_buttons_of_a_new_image_post_the_page_form(self, logged_in, image):
        response = logged_in.get(change_url(image))
        assert response.status_code == 200
        assert button_actions(response) == ["approve", "reference", "discard"]
        html = response.content.decode()
        for action in button_actions(response):
            assert re.search(
                rf'form="generatedimage_form" formaction="{review_url(image)}" '
                rf'name="action" value="{action}"',
                html,
            )

    def test_settings_are_labelled_fields_not_json(self, logged_in, editor):
        image = make_image(make_job(editor, resolution="2k"))
        html = logged_in.get(change_url(image)).content.decode()
        assert "<dt>Resolution</dt><dd>2K</dd>" in html
        assert "<dt>Aspect ratio</dt><dd>Automatic</dd>" in html
        assert "{&quot;" not in html and '{"resolution"' not in html

    def test_approved_image_has_no_approve_button(self, logged_in, editor):
        image = make_image(make_job(editor), review_status=ReviewStatus.APPROVED)
        assert button_actions(logged_in.get(change_url(image))) == ["reference", "discard"]

    def test_discarded_image_has_no_buttons(self, logged_in, editor):
        image = make_image(make_job(editor), review_status=ReviewStatus.DISCARDED, file="")
        response = logged_in.get(change_url(image))
        assert response.status_code == 200
        assert response.context["image_actions"] == []
        assert "Discarded: the file was deleted." in response.content.decode()

    def test_buttons_follow_permissions(self, client, django_user_model):
        user = make_user(
            django_user_model,
            "imagegen.view_generationjob",
            "imagegen.view_generatedimage",
            "imagegen.change_generatedimage",
        )
        image = make_image(make_job(user))
        client.force_login(user)
        assert button_actions(client.get(change_url(image))) == ["approve"]

    def test_title_and_alt_text_are_saved(self, logged_in, image):
        data = {
            "title": "Red bicycle",
            "alt_text": "A red bicycle leaning on a blue wall",
            "review_status": ReviewStatus.APPROVED,  # read-only: ignored
            "_save": "Save",
        }
        response = logged_in.post(change_url(image), data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        image.refresh_from_db()
        assert image.title == "Red bicycle"
        assert image.alt_text == "A red bicycle leaning on a blue wall"
        assert image.review_status == ReviewStatus.NEW

    def test_saving_writes_only_title_and_alt_text(self, logged_in, image):
        """A preview made (or a discard done) while the editor saves is kept."""
        from django.db.models.signals import pre_save

        def worker_makes_the_preview(sender, instance, **kwargs):
            GeneratedImage.objects.filter(pk=instance.pk).update(
                thumbnail="imagegen/made-meanwhile.thumb.webp", review_status="approved"
            )

        pre_save.connect(worker_makes_the_preview, sender=GeneratedImage)
        try:
            response = logged_in.post(change_url(image), {"title": "Kept", "_save": "Save"})
        finally:
            pre_save.disconnect(worker_makes_the_preview, sender=GeneratedImage)
        assert response.status_code == 302
        image.refresh_from_db()
        assert image.title == "Kept"
        assert image.thumbnail.name == "imagegen/made-meanwhile.thumb.webp"
        assert image.review_status == ReviewStatus.APPROVED

    def test_editing_needs_change_permission(self, client, django_user_model):
        viewer = make_user(
            django_user_model, "imagegen.view_generationjob", "imagegen.view_generatedimage"
        )
        image = make_image(make_job(viewer))
        client.force_login(viewer)
        response = client.post(change_url(image), {"title": "Mine now", "_save": "Save"})
        assert response.status_code == 403
        image.refresh_from_db()
        assert image.title == ""

    def test_another_users_image_is_not_found(self, logged_in, other):
        image = make_image(make_job(other))
        response = logged_in.get(change_url(image), follow=True)
        assert response.redirect_chain[-1][0] == reverse("admin:index")
        assert any("doesn’t exist" in m for m in messages_of(response))
        assert logged_in.post(action_url(image, "discard_images")).status_code == 404
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.NEW


class TestApprove:
    def test_approve_once(self, logged_in, editor, image, act):
        response = act("approve_images", image)
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.APPROVED
        assert image.reviewed_by == editor
        assert image.reviewed_at is not None
        assert messages_of(response) == ["1 image approved."]

    def test_approve_twice_says_already(self, logged_in, image, act):
        act("approve_images", image)
        image.refresh_from_db()
        reviewed_at = image.reviewed_at
        response = act("approve_images", image)
        image.refresh_from_db()
        assert image.reviewed_at == reviewed_at
        assert messages_of(response) == ["1 image was already approved or discarded."]

    def test_discarded_image_is_not_approved(self, logged_in, editor, act):
        image = make_image(make_job(editor), review_status=ReviewStatus.DISCARDED, file="")
        response = act("approve_images", image)
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.DISCARDED
        assert messages_of(response) == ["1 image was already approved or discarded."]

    def test_approve_from_a_filtered_list_counts_right(self, logged_in, editor):
        job = make_job(editor)
        images = [make_image(job, index=i) for i in range(2)]
        url = reverse(CHANGELIST) + "?review_status__exact=new"
        data = {"action": "approve_images", "_selected_action": [i.pk for i in images]}
        response = logged_in.post(url, data, follow=True)
        assert messages_of(response) == ["2 images approved."]
        assert set(GeneratedImage.objects.values_list("review_status", flat=True)) == {"approved"}

    def test_required_alt_text_refuses_only_the_images_without(self, settings, logged_in, editor):
        """With REQUIRE_ALT_TEXT, the family of selected images: with alt
        text, marked decorative, with neither, and one already approved. Only
        the first two are approved; the third is refused with a warning, not a
        500, and left as it was."""
        settings.IMAGEGEN = {**settings.IMAGEGEN, "REQUIRE_ALT_TEXT": True}
        job = make_job(editor)
        with_text = make_image(job, index=0, alt_text="A red bicycle")
        decorative = make_image(job, index=1, decorative=True)
        neither = make_image(job, index=2)
        approved = make_image(job, index=3, review_status=ReviewStatus.APPROVED)
        selected = [with_text, decorative, neither, approved]
        data = {"action": "approve_images", "_selected_action": [i.pk for i in selected]}
        response = logged_in.post(reverse(CHANGELIST), data, follow=True)
        assert response.status_code == 200
        assert messages_of(response) == [
            "1 image needs alt text, or the decorative mark, before it is approved.",
            "2 images approved.",
            "1 image was already approved or discarded.",
        ]
        for image in selected:
            image.refresh_from_db()
        assert [i.review_status for i in selected] == ["approved", "approved", "new", "approved"]

    def test_approve_needs_change_permission(self, client, django_user_model):
        viewer = make_user(
            django_user_model, "imagegen.view_generationjob", "imagegen.view_generatedimage"
        )
        image = make_image(make_job(viewer))
        client.force_login(viewer)
        assert client.post(action_url(image, "approve_images")).status_code == 403
        assert "approve_images" not in offered_actions(client.get(reverse(CHANGELIST)))
        client.post(
            reverse(CHANGELIST), {"action": "approve_images", "_selected_action": [image.pk]}
        )
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.NEW


class TestDiscard:
    def test_discard_deletes_the_files_after_commit_and_keeps_the_row(
        self, logged_in, editor, act, settings, django_capture_on_commit_callbacks
    ):
        """With ``DISCARD_UNDO_SECONDS`` = 0, the files go when the discard commits."""
        settings.IMAGEGEN = {**settings.IMAGEGEN, "DISCARD_UNDO_SECONDS": 0}
        image = with_preview(make_image(make_job(editor), size=(500, 500)))
        names = [image.file.name, image.thumbnail.name]
        storage = get_storage()
        assert all(storage.exists(name) for name in names)

        with django_capture_on_commit_callbacks() as callbacks:
            response = act("discard_images", image)
        # Nothing is deleted before the transaction commits.
        assert all(storage.exists(name) for name in names)
        assert callbacks
        for callback in callbacks:
            callback()
        assert not any(storage.exists(name) for name in names)

        image.refresh_from_db()
        assert image.review_status == ReviewStatus.DISCARDED
        assert (image.file.name, image.thumbnail.name) == ("", "")
        assert image.reviewed_by == editor
        assert messages_of(response) == ["1 image discarded and its file deleted."]

    def test_discard_keeps_the_files_for_the_undo_time(
        self, logged_in, editor, act, django_capture_on_commit_callbacks
    ):
        """The default: the image is discarded at once, its files are kept
        ``DISCARD_UNDO_SECONDS`` (Undo restores it), then purged."""
        from datetime import timedelta

        from django.utils import timezone

        image = with_preview(make_image(make_job(editor), size=(500, 500)))
        names = [image.file.name, image.thumbnail.name]
        storage = get_storage()
        with django_capture_on_commit_callbacks(execute=False):
            response = act("discard_images", image)
        assert messages_of(response) == [
            "1 image discarded; its file is deleted in 30 seconds unless you undo it "
            "(action “Undo discard”)."
        ]
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.DISCARDED
        assert all(storage.exists(name) for name in names)
        # Not yet due: nothing purged.
        assert services.reviews.purge_due() == 0
        # The purge task's message was never sent (execute=False): the sweep,
        # once the undo time is over, deletes the files.
        later = timezone.now() + timedelta(seconds=31)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.sweep(later)["discarded"] == 1
        assert not any(storage.exists(name) for name in names)
        image.refresh_from_db()
        assert (image.file.name, image.thumbnail.name) == ("", "")
        assert image.review_status == ReviewStatus.DISCARDED

    def test_discard_deletes_a_preview_made_after_the_image_was_read(
        self, editor, django_capture_on_commit_callbacks
    ):
        job = make_job(editor)
        image = make_image(job, size=(500, 500))
        stale = GeneratedImage.objects.get(pk=image.pk)
        image = with_preview(image)
        preview = image.thumbnail.name
        assert preview and stale.thumbnail.name == ""
        with django_capture_on_commit_callbacks(execute=True):
            assert services.reviews.discard(stale, user=editor) is True
        assert not get_storage().exists(preview)
        assert not get_storage().exists(image.file.name)

    def test_discard_deletes_a_preview_that_no_row_names(
        self, editor, django_capture_on_commit_callbacks
    ):
        """A preview task that wrote its file and died before recording it
        leaves a file only its name ties to the image: discard deletes it."""
        from django.core.files.base import ContentFile

        from imagegen.services.thumbnails import thumbnail_name

        job = make_job(editor)
        image = make_image(job, size=(500, 500))
        stored = image.file.name
        orphan = get_storage().save(thumbnail_name(stored), ContentFile(b"webp"))
        assert image.thumbnail.name == ""
        with django_capture_on_commit_callbacks(execute=True):
            assert services.reviews.discard(image, user=editor) is True
        assert not get_storage().exists(orphan)
        assert not get_storage().exists(stored)

    def test_discard_twice_is_idempotent(
        self, logged_in, image, act, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            act("discard_images", image)
        image.refresh_from_db()
        reviewed_at = image.reviewed_at
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = act("discard_images", image)
        assert callbacks == []
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.DISCARDED
        assert image.reviewed_at == reviewed_at
        assert messages_of(response) == ["1 image was already discarded."]

    def test_approved_image_can_be_discarded(
        self, logged_in, editor, act, settings, django_capture_on_commit_callbacks
    ):
        settings.IMAGEGEN = {**settings.IMAGEGEN, "DISCARD_UNDO_SECONDS": 0}
        image = make_image(make_job(editor), review_status=ReviewStatus.APPROVED)
        name = image.file.name
        with django_capture_on_commit_callbacks(execute=True):
            act("discard_images", image)
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.DISCARDED
        assert not get_storage().exists(name)

    def test_discard_needs_delete_permission(
        self, client, django_user_model, django_capture_on_commit_callbacks
    ):
        user = make_user(
            django_user_model,
            "imagegen.add_generationjob",
            "imagegen.view_generationjob",
            "imagegen.view_generatedimage",
            "imagegen.change_generatedimage",
        )
        image = make_image(make_job(user))
        client.force_login(user)
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(action_url(image, "discard_images")).status_code == 403
            response = client.get(reverse(CHANGELIST))
            assert "discard_images" not in offered_actions(response)
            assert "approve_images" in offered_actions(response)
            client.post(
                reverse(CHANGELIST), {"action": "discard_images", "_selected_action": [image.pk]}
            )
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.NEW
        assert get_storage().exists(image.file.name)
        assert "discard" not in button_actions(client.get(change_url(image)))

    def test_get_on_an_action_url_is_405(self, logged_in, image):
        for action in ("approve_images", "discard_images", "use_as_reference"):
            assert logged_in.get(action_url(image, action)).status_code == 405
        image.refresh_from_db()
        assert image.review_status == ReviewStatus.NEW
        assert get_storage().exists(image.file.name)


class TestUseAsReference:
    def test_redirects_to_an_image_to_image_form_with_the_images(self, logged_in, editor, act):
        job = make_job(editor)
        image = make_image(job, index=0)
        response = act("use_as_reference", image, follow=False)
        assert response.status_code == 302
        # The job's prompt and aspect ratio come along ("from").
        assert response["Location"] == f"{reverse(ADD_JOB)}?references={image.pk}&from={job.pk}"
        page = logged_in.get(response["Location"])
        assert page.status_code == 200
        form = page.context["form"]
        assert form["mode"].value() == Mode.IMAGE_TO_IMAGE
        assert form["prompt"].value() == job.prompt
        assert form["reference_images"].value() == [image.pk]
        assert re.search(
            rf'name="reference_images" value="{image.pk}"\s+checked', page.content.decode()
        )

    def test_several_images_from_the_list(self, logged_in, editor):
        job = make_job(editor)
        images = [make_image(job, index=i) for i in range(3)]
        data = {"action": "use_as_reference", "_selected_action": [i.pk for i in images]}
        response = logged_in.post(reverse(CHANGELIST), data, follow=True)
        assert response.redirect_chain[-1][0].startswith(reverse(ADD_JOB))
        assert sorted(response.context["form"]["reference_images"].value()) == sorted(
            i.pk for i in images
        )

    def test_discarded_images_are_not_references(self, logged_in, editor):
        job = make_job(editor)
        kept = make_image(job, index=0)
        discarded = make_image(job, index=1, review_status=ReviewStatus.DISCARDED, file="")
        data = {"action": "use_as_reference", "_selected_action": [discarded.pk]}
        response = logged_in.post(reverse(CHANGELIST), data, follow=True)
        assert messages_of(response) == ["Discarded images cannot be references."]
        assert response.redirect_chain[-1][0].startswith(reverse(CHANGELIST))

        # Asked for by id, the form leaves it out; the picker never offers it.
        page = logged_in.get(reverse(ADD_JOB), {"references": f"{kept.pk},{discarded.pk}"})
        form = page.context["form"]
        assert form["reference_images"].value() == [kept.pk]
        offered = [img.pk for img in form.fields["reference_images"].widget.images]
        assert offered == [kept.pk]
        assert f'value="{discarded.pk}"' not in page.content.decode()

        # Submitted anyway, it is refused.
        post = {
            "prompt": "again",
            "mode": Mode.IMAGE_TO_IMAGE,
            "resolution": "1k",
            "aspect_ratio": "auto",
            "reference_images": [discarded.pk],
            "idempotency_key": "admin:discarded-reference",
        }
        refused = logged_in.post(reverse(ADD_JOB), post)
        assert refused.status_code == 200
        assert "reference_images" in refused.context["form"].errors
        assert GenerationJob.objects.count() == 1

    def test_another_users_images_are_left_out(self, logged_in, other):
        theirs = make_image(make_job(other))
        page = logged_in.get(reverse(ADD_JOB), {"references": str(theirs.pk)})
        assert not page.context["form"]["reference_images"].value()
        assert page.context["form"].fields["reference_images"].widget.images == []

    def test_needs_add_job_permission(self, client, django_user_model):
        user = make_user(
            django_user_model,
            "imagegen.view_generationjob",
            "imagegen.view_generatedimage",
            "imagegen.change_generatedimage",
        )
        image = make_image(make_job(user))
        client.force_login(user)
        assert client.post(action_url(image, "use_as_reference")).status_code == 403
        assert "use_as_reference" not in offered_actions(client.get(reverse(CHANGELIST)))
