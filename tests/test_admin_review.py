"""Review in place and honest waiting, through the test client: the review
endpoint (every action, every kind of user), discard with undo and its
purge, the job page's status JSON (waiting, refusals, cancel costs, review
data), the job page's buttons and the reference prefill."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from imagegen import job_states, services
from imagegen.choices import Mode, ReviewStatus, Status
from imagegen.models import GeneratedImage
from imagegen.review_tasks import purge_discarded
from imagegen.serializers import image_name
from imagegen.storage import get_storage

from .factories import DOCUMENTED_EDITOR, make_image, make_job, make_user, messages_of

pytestmark = pytest.mark.django_db

#: The permissions docs/admin.md lists for an editor who generates and
#: reviews (no change permission on jobs: that is for "poll now").
JSON = {"HTTP_ACCEPT": "application/json"}


def review_url(image: GeneratedImage) -> str:
    return reverse("admin:imagegen_generatedimage_review", args=[image.pk])


def job_url(job: Any) -> str:
    return reverse("admin:imagegen_generationjob_change", args=[job.pk])


def status_of(client: Any, job: Any) -> dict[str, Any]:
    response = client.get(reverse("admin:imagegen_generationjob_status", args=[job.pk]))
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def documented_editor(django_user_model: Any) -> Any:
    return make_user(django_user_model, *DOCUMENTED_EDITOR, username="documented")


@pytest.fixture
def superuser(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", password="password")


# The review endpoint --------------------------------------------------------------

USERS = {
    "documented editor": DOCUMENTED_EDITOR,
    "no change permission": (
        "imagegen.view_generationjob",
        "imagegen.view_generatedimage",
        "imagegen.delete_generatedimage",
    ),
    "no delete permission": (
        "imagegen.view_generationjob",
        "imagegen.view_generatedimage",
        "imagegen.change_generatedimage",
    ),
    "viewer": ("imagegen.view_generationjob", "imagegen.view_generatedimage"),
}

#: (user, action) -> HTTP status the endpoint answers.
EXPECTED = {
    ("documented editor", "save"): 200,
    ("documented editor", "approve"): 200,
    ("documented editor", "discard"): 200,
    ("no change permission", "save"): 403,
    ("no change permission", "approve"): 403,
    # With text typed: refused as a whole (it may not edit it).
    ("no change permission", "discard"): 403,
    ("no delete permission", "save"): 200,
    ("no delete permission", "approve"): 200,
    ("no delete permission", "discard"): 403,
    ("viewer", "save"): 403,
    ("viewer", "approve"): 403,
    ("viewer", "discard"): 403,
}


class TestReviewEndpoint:
    @pytest.mark.parametrize(("who", "action"), sorted(EXPECTED))
    @pytest.mark.parametrize("answer", ["json", "redirect"])
    def test_every_action_for_every_kind_of_user(
        self, client, django_user_model, who, action, answer
    ):
        """Family: the four kinds of users (the documented editor, without
        change, without delete, a viewer) x save, approve, discard x a JSON
        or a form post. Allowed: the title and alt text typed are saved with
        the decision. Refused: 403 with the permission's name, nothing
        changed (the text typed is not saved either)."""
        user = make_user(django_user_model, *USERS[who])
        image = make_image(make_job(user))
        client.force_login(user)
        data = {"action": action, "title": "Harbour", "alt_text": "Boats in a harbour"}
        if answer == "json":
            response = client.post(review_url(image), data, **JSON)
            assert response.status_code == EXPECTED[(who, action)]
        else:
            data["next"] = job_url(image.job)
            response = client.post(review_url(image), data)
            # Either way back to the job page, with the outcome as a message.
            assert response.status_code == 302
        image.refresh_from_db()
        if EXPECTED[(who, action)] == 200:
            status = {
                "save": ReviewStatus.NEW,
                "approve": ReviewStatus.APPROVED,
                "discard": ReviewStatus.DISCARDED,
            }
            assert image.review_status == status[action]
            assert (image.title, image.alt_text) == ("Harbour", "Boats in a harbour")
            if answer == "json":
                body = response.json()
                assert body["image"]["review_status"] == image.review_status
                assert body["image"]["name"] == image_name(image)
        else:
            assert image.review_status == ReviewStatus.NEW
            assert (image.title, image.alt_text) == ("", "")
            if answer == "json":
                assert "permission" in response.json()["error"]

    def test_discard_by_a_user_who_may_not_edit_leaves_the_text_alone(
        self, client, django_user_model
    ):
        """Without the change permission, a discard that carries unchanged
        text is fine; one that carries edited text is refused as a whole."""
        user = make_user(django_user_model, *USERS["no change permission"])
        image = make_image(make_job(user), title="Kept")
        client.force_login(user)
        same = client.post(review_url(image), {"action": "discard", "title": "Kept"}, **JSON)
        assert same.status_code == 200
        image.refresh_from_db()
        assert (image.title, image.review_status) == ("Kept", ReviewStatus.DISCARDED)

    @pytest.mark.parametrize("who", ["documented editor", "superuser"])
    def test_another_users_image_is_404_unless_seen(
        self, client, django_user_model, who, superuser
    ):
        owner = make_user(django_user_model, *DOCUMENTED_EDITOR)
        image = make_image(make_job(owner))
        user = superuser if who == "superuser" else make_user(django_user_model, *DOCUMENTED_EDITOR)
        client.force_login(user)
        response = client.post(review_url(image), {"action": "approve"}, **JSON)
        assert response.status_code == (200 if who == "superuser" else 404)

    @pytest.mark.parametrize(
        ("data", "status"),
        [
            ({"action": "explode"}, 400),
            ({"action": "save", "title": "x" * 256}, 400),
            ({"action": "save", "alt_text": "x" * 501}, 400),
        ],
    )
    def test_bad_input_is_400_and_changes_nothing(self, client, documented_editor, data, status):
        """Family: an unknown action, a title and an alt text over their limits."""
        image = make_image(make_job(documented_editor))
        client.force_login(documented_editor)
        response = client.post(review_url(image), data, **JSON)
        assert response.status_code == status
        assert response.json()["error"]
        image.refresh_from_db()
        assert (image.title, image.alt_text, image.review_status) == ("", "", ReviewStatus.NEW)

    def test_get_is_405(self, client, documented_editor):
        image = make_image(make_job(documented_editor))
        client.force_login(documented_editor)
        assert client.get(review_url(image)).status_code == 405

    def test_a_form_post_goes_back_to_next_on_this_site_only(self, client, documented_editor):
        image = make_image(make_job(documented_editor))
        client.force_login(documented_editor)
        back = client.post(review_url(image), {"action": "save", "next": job_url(image.job)})
        assert back["Location"] == job_url(image.job)
        away = client.post(review_url(image), {"action": "save", "next": "https://evil.example/"})
        assert away["Location"] == reverse("admin:imagegen_generatedimage_change", args=[image.pk])

    @pytest.mark.parametrize("who", ["documented editor", "superuser"])
    def test_use_as_reference_saves_the_text_and_keeps_the_prompt(
        self, client, documented_editor, superuser, who
    ):
        """The image page's "Use as reference": the text typed is saved, and
        the form opens image-to-image with the job's prompt and aspect ratio."""
        job = make_job(documented_editor, prompt="a lighthouse", aspect_ratio="16:9")
        image = make_image(job)
        client.force_login(superuser if who == "superuser" else documented_editor)
        response = client.post(
            review_url(image), {"action": "reference", "title": "Lighthouse", "alt_text": ""}
        )
        assert response.status_code == 302
        image.refresh_from_db()
        assert image.title == "Lighthouse"
        page = client.get(response["Location"])
        form = page.context["form"]
        assert form["mode"].value() == Mode.IMAGE_TO_IMAGE
        assert form["prompt"].value() == "a lighthouse"
        assert form["aspect_ratio"].value() == "16:9"
        assert form["reference_images"].value() == [image.pk]


# Discard, undo, purge ------------------------------------------------------------


class TestDiscardUndo:
    def test_undo_within_the_time_restores_the_image_and_its_file(
        self, client, documented_editor, django_capture_on_commit_callbacks
    ):
        image = make_image(make_job(documented_editor))
        name = image.file.name
        client.force_login(documented_editor)
        with django_capture_on_commit_callbacks(execute=False) as sent:
            body = client.post(review_url(image), {"action": "discard"}, **JSON).json()
        assert len(sent) == 1  # the purge task, for later
        assert body["image"]["review_status"] == "discarded"
        assert 25 <= body["image"]["undo_seconds"] <= 30
        assert get_storage().exists(name)
        body = client.post(review_url(image), {"action": "restore"}, **JSON).json()
        assert body["image"]["review_status"] == "new"
        image.refresh_from_db()
        assert image.file.name == name and get_storage().exists(name)
        # The purge task, when it comes, leaves the restored image alone.
        assert purge_discarded.run(str(image.pk)) == "nothing"
        assert get_storage().exists(name)

    def test_undo_after_the_time_is_refused(self, client, documented_editor):
        image = make_image(make_job(documented_editor))
        client.force_login(documented_editor)
        client.post(review_url(image), {"action": "discard"}, **JSON)
        GeneratedImage.objects.filter(pk=image.pk).update(
            reviewed_at=timezone.now() - timedelta(seconds=31)
        )
        body = client.post(review_url(image), {"action": "restore"}, **JSON).json()
        assert body["image"]["review_status"] == "discarded"
        assert body["message"] == "Too late to undo: the file was deleted."

    @pytest.mark.parametrize(
        ("age", "outcome", "deleted"),
        [(0, "later", False), (31, "purged", True)],
    )
    def test_the_purge_task_waits_for_the_undo_time(
        self,
        documented_editor,
        age,
        outcome,
        deleted,
        monkeypatch,
        django_capture_on_commit_callbacks,
    ):
        """Family: the task run before the time is over (it sends itself
        again, for the rest) and after (it deletes the files)."""
        sent: list[Any] = []
        monkeypatch.setattr(
            purge_discarded, "apply_async", lambda args, **kw: sent.append((args, kw))
        )
        image = make_image(make_job(documented_editor))
        name = image.file.name
        with django_capture_on_commit_callbacks(execute=True):
            services.reviews.discard(image, user=documented_editor, undo=True)
        assert sent and sent[0][1]["countdown"] == 30
        sent.clear()
        GeneratedImage.objects.filter(pk=image.pk).update(
            reviewed_at=timezone.now() - timedelta(seconds=age)
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert purge_discarded.run(str(image.pk)) == outcome
        assert get_storage().exists(name) is not deleted
        assert bool(sent) is (outcome == "later")

    def test_a_discarded_image_is_not_a_result_while_kept_for_undo(self, client, documented_editor):
        """Kept for its undo, a discarded image is no longer offered: not in
        the job's results, not a reference, not the list's thumbnail."""
        job = make_job(documented_editor)
        image = make_image(job)
        services.reviews.discard(image, user=documented_editor, undo=True)
        client.force_login(documented_editor)
        data = status_of(client, job)
        assert data["images"] == []
        assert [i["review_status"] for i in data["review"]["images"]] == ["discarded"]
        page = client.get(reverse("admin:imagegen_generationjob_add"), {"references": image.pk})
        assert not page.context["form"]["reference_images"].value()


# Status JSON of the job page -----------------------------------------------------------


class TestJobPageStatus:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({"status": Status.QUEUED, "submit_attempts": 2, "error_code": "429"}, (3, 5)),
            ({"status": Status.QUEUED, "submit_attempts": 1, "error_code": "503"}, (2, 5)),
            ({"status": Status.QUEUED, "submit_attempts": 5, "error_code": "500"}, (5, 5)),
            (
                {"status": Status.QUEUED, "submit_attempts": 1, "error_code": "SUBMIT_UNCERTAIN"},
                (2, 5),
            ),
            ({"status": Status.QUEUED, "submit_attempts": 0, "error_code": ""}, None),
            ({"status": Status.RUNNING, "submit_attempts": 1, "error_code": ""}, None),
            ({"status": Status.FAILED, "submit_attempts": 5, "error_code": "429"}, None),
        ],
    )
    def test_waiting_to_retry(self, client, documented_editor, fields, expected):
        """Family: queued after a 429, a 503, the last attempt's 500, a lost
        answer; queued before any attempt; running; failed. Only the first
        four wait to retry, with the attempt to come and the limit."""
        job = make_job(documented_editor, **fields)
        client.force_login(documented_editor)
        data = status_of(client, job)
        want = None if expected is None else {"attempt": expected[0], "of": expected[1]}
        assert data["waiting_retry"] == want

    @pytest.mark.parametrize("code", sorted(job_states.MODERATION_CODES))
    def test_moderation_refusals(self, client, documented_editor, code):
        job = make_job(documented_editor, status=Status.FAILED, error_code=code)
        client.force_login(documented_editor)
        assert status_of(client, job)["refused_by_moderation"] is True

    @pytest.mark.parametrize("code", ["429", "SUBMIT_FAILED", "EXPIRED", "STORE_FAILED"])
    def test_other_failures_are_not_refusals(self, client, documented_editor, code):
        job = make_job(documented_editor, status=Status.FAILED, error_code=code)
        client.force_login(documented_editor)
        assert status_of(client, job)["refused_by_moderation"] is False

    @pytest.mark.parametrize(
        ("fields", "charged"),
        [
            ({"status": Status.QUEUED}, False),
            ({"status": Status.QUEUED, "submit_lost": 1}, True),
            ({"status": Status.QUEUED, "submitting_since": timezone.now()}, True),
            ({"status": Status.SUBMITTED}, True),
            ({"status": Status.RUNNING}, True),
        ],
    )
    def test_cancel_may_charge(self, client, documented_editor, fields, charged):
        """Family: queued and never sent; queued with a lost answer; queued
        with a submission under way; accepted (submitted, running)."""
        job = make_job(documented_editor, **fields)
        client.force_login(documented_editor)
        assert status_of(client, job)["cancel_may_charge"] is charged

    @pytest.mark.parametrize(("age", "overdue"), [(5, False), (3600, True)])
    def test_overdue(self, client, documented_editor, age, overdue):
        job = make_job(
            documented_editor,
            status=Status.RUNNING,
            created_at=timezone.now() - timedelta(seconds=age),
        )
        client.force_login(documented_editor)
        assert status_of(client, job)["overdue"] is overdue

    @pytest.mark.parametrize(
        ("perms", "can_edit", "can_discard"),
        [
            (DOCUMENTED_EDITOR, True, True),
            (USERS["no change permission"], False, True),
            (USERS["no delete permission"], True, False),
            (USERS["viewer"], False, False),
        ],
    )
    def test_review_data_and_permissions(
        self, client, django_user_model, perms, can_edit, can_discard
    ):
        user = make_user(django_user_model, *perms)
        job = make_job(user)
        make_image(job, index=0, title="Harbour", alt_text="Boats")
        client.force_login(user)
        review = status_of(client, job)["review"]
        assert (review["can_edit"], review["can_discard"]) == (can_edit, can_discard)
        (image,) = review["images"]
        assert (image["name"], image["title"], image["alt_text"]) == ("Harbour", "Harbour", "Boats")
        assert image["thumbnail_url"]


# The job page -----------------------------------------------------------------------


def shown_tools(response: Any) -> dict[str, bool]:
    return {b["name"]: b["shown"] for b in response.context["job_actions"]}


class TestJobPage:
    @pytest.mark.parametrize("who", ["documented editor", "superuser"])
    def test_images_are_review_forms_for_the_documented_editor(
        self, client, documented_editor, superuser, who
    ):
        job = make_job(documented_editor, images=2)
        client.force_login(superuser if who == "superuser" else documented_editor)
        html = client.get(job_url(job)).content.decode()
        for image in job.images.all():
            assert f'action="{review_url(image)}"' in html
        assert html.count('name="title"') == 3  # two images and the card template
        assert "readonly" not in html.split('id="imagegen-results"')[1].split("</template>")[0]
        assert 'value="approve"' in html and 'value="discard"' in html
        # Not nested in the page's own form (a browser would drop the inner form).
        page_form = html.index('id="generationjob_form"')
        assert html.rindex('<form class="imagegen-card imagegen-review"') < page_form

    def test_moderation_refusal_offers_edit_the_prompt_not_retry(self, client, documented_editor):
        job = make_job(documented_editor, status=Status.FAILED, error_code="CONTENT_VIOLATION")
        client.force_login(documented_editor)
        response = client.get(job_url(job))
        tools = shown_tools(response)
        assert tools["edit_prompt"] is True and tools["retry_jobs"] is False
        edit = next(b for b in response.context["job_actions"] if b["name"] == "edit_prompt")
        form = client.get(edit["href"]).context["form"]
        assert form["prompt"].value() == job.prompt

    def test_a_temporary_failure_offers_retry(self, client, documented_editor):
        job = make_job(documented_editor, status=Status.FAILED, error_code="SUBMIT_FAILED")
        client.force_login(documented_editor)
        tools = shown_tools(client.get(job_url(job)))
        assert tools["retry_jobs"] is True and tools["edit_prompt"] is False

    @pytest.mark.parametrize("who", ["documented editor", "superuser"])
    def test_a_job_already_retried_links_to_the_retry(
        self, client, documented_editor, superuser, who
    ):
        user = superuser if who == "superuser" else documented_editor
        job = make_job(documented_editor, status=Status.FAILED, error_code="SUBMIT_FAILED")
        retry, _made = services.retry(job, user=user)
        client.force_login(user)
        response = client.get(job_url(job))
        names = [b["name"] for b in response.context["job_actions"]]
        assert "retry_jobs" not in names and "see_retry" in names
        assert job_url(retry) in response.content.decode()
        # The retry's page shows where it came from.
        assert "Retry of" in client.get(job_url(retry)).content.decode()

    @pytest.mark.parametrize(
        ("reviews", "shown"),
        [
            ([ReviewStatus.NEW, ReviewStatus.DISCARDED], True),
            ([ReviewStatus.APPROVED], True),
            ([ReviewStatus.DISCARDED, ReviewStatus.DISCARDED], False),
            ([], False),
        ],
    )
    def test_use_as_reference_only_with_kept_images(
        self, client, documented_editor, reviews, shown
    ):
        """Family: some kept, one approved, every image discarded, none."""
        job = make_job(documented_editor)
        for index, review in enumerate(reviews):
            make_image(job, index=index, review_status=review)
        client.force_login(documented_editor)
        assert shown_tools(client.get(job_url(job)))["use_as_reference"] is shown

    @pytest.mark.parametrize(
        ("fields", "says"),
        [
            ({"status": Status.RUNNING}, "may still be charged"),
            ({"status": Status.QUEUED}, "costs nothing"),
        ],
    )
    def test_cancel_says_what_it_costs(self, client, documented_editor, fields, says):
        """Before (the note by the button) and after (the message)."""
        job = make_job(documented_editor, **fields)
        client.force_login(documented_editor)
        assert says in client.get(job_url(job)).content.decode()
        action = reverse("admin:imagegen_generationjob_action", args=[job.pk, "cancel_jobs"])
        response = client.post(action, follow=True)
        texts = " ".join(messages_of(response))
        assert "1 job canceled." in texts
        assert ("may still be charged" in texts) is (says == "may still be charged")


class TestReferencesPrefill:
    @pytest.mark.parametrize(
        ("which", "mode", "warned"),
        [
            ("mine", Mode.IMAGE_TO_IMAGE, False),
            ("theirs", Mode.TEXT_TO_IMAGE, True),
            ("discarded", Mode.TEXT_TO_IMAGE, True),
            ("unknown", Mode.TEXT_TO_IMAGE, True),
            ("not a number", Mode.TEXT_TO_IMAGE, True),
            ("mine and theirs", Mode.IMAGE_TO_IMAGE, True),
        ],
    )
    def test_only_usable_images_are_chosen_and_the_rest_is_said(
        self, client, django_user_model, documented_editor, which, mode, warned
    ):
        """Family: ``?references=`` naming my image, another user's, a
        discarded one, an unknown id, a word, mine and another's. The form
        is image-to-image only with something chosen; a message says how
        many could not be used."""
        other = make_user(django_user_model, *DOCUMENTED_EDITOR)
        mine = make_image(make_job(documented_editor))
        ids = {
            "mine": str(mine.pk),
            "theirs": str(make_image(make_job(other)).pk),
            "discarded": str(
                make_image(
                    make_job(documented_editor), review_status=ReviewStatus.DISCARDED, file=""
                ).pk
            ),
            "unknown": "999999",
            "not a number": "abc",
        }
        ids["mine and theirs"] = f"{ids['mine']},{ids['theirs']}"
        client.force_login(documented_editor)
        page = client.get(reverse("admin:imagegen_generationjob_add"), {"references": ids[which]})
        form = page.context["form"]
        assert (form["mode"].value() or Mode.TEXT_TO_IMAGE) == mode
        texts = [str(m) for m in page.context["messages"]]
        assert any("cannot be used" in t for t in texts) is warned
