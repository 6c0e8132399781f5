"""The service layer against the sandbox over real HTTP, without a worker:
each step is called directly, so every transition is checked in isolation."""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from PIL import Image

from imagegen import conf, services, tokens
from imagegen.choices import Status, TaskStatus
from imagegen.exceptions import FetchError, TransientError
from imagegen.models import GeneratedImage, GenerationJob
from imagegen.providers import Output, TaskState
from imagegen.services.leases import Lease, LeaseLostError
from imagegen.storage import get_storage, output_name

from .conftest import wait_until

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def create(prompt="a red bicycle", **kwargs):
    return services.create_job(prompt=prompt, **kwargs)


def poll_until_done(job):
    """Poll (as the sweeper's tasks would) until the provider reports an end state."""

    def settled():
        services.poll(job.pk)
        job.refresh_from_db()
        return job.status not in (Status.SUBMITTED, Status.RUNNING)

    wait_until(settled, timeout=15, interval=0.1, what="provider to finish")
    return job


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.tobytes()


def run_to_end(job):
    assert services.submit(job.pk) == "submitted"
    poll_until_done(job)
    if job.status == Status.FINALIZING:
        services.finalize(job.pk)
        job.refresh_from_db()
    return job


class TestCreate:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"prompt": ""}, "prompt"),
            ({"prompt": "   "}, "prompt"),
            ({"prompt": "x" * 20001}, "prompt"),
            ({"prompt": "bell \x07 here"}, "prompt"),
            ({"mode": "sketch"}, "mode"),
            ({"resolution": "8k"}, "resolution"),
            ({"aspect_ratio": "2:1"}, "aspect_ratio"),
            ({"mode": "image-to-image"}, "reference_urls"),
            ({"reference_urls": ["https://example.com/a.png"]}, "reference_urls"),
            (
                {"mode": "image-to-image", "reference_urls": ["https://e.com/a.png"] * 17},
                "reference_urls",
            ),
            (
                {"mode": "image-to-image", "reference_urls": ["file:///etc/passwd"]},
                "reference_urls",
            ),
            ({"mode": "image-to-image", "reference_urls": ["ftp://e.com/a.png"]}, "reference_urls"),
        ],
    )
    def test_bad_input_is_refused_and_nothing_saved(self, imagegen_settings, kwargs, field):
        kwargs = {"prompt": "a red bicycle", **kwargs}
        with pytest.raises(ValidationError) as info:
            services.create_job(**kwargs)
        assert field in info.value.message_dict
        assert GenerationJob.objects.count() == 0

    def test_prompt_at_the_limit_is_accepted(self, imagegen_settings):
        assert create("x" * 20000).status == Status.QUEUED

    def test_new_job_is_queued_priced_and_enqueued_after_commit(
        self, imagegen_settings, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks() as callbacks:
            job = create(resolution="2k")
        assert len(callbacks) == 1
        job.refresh_from_db()
        assert job.status == Status.QUEUED
        assert job.provider == "sandbox"
        assert job.model == "gpt-image-2"
        assert job.estimated_cost == Decimal("0.04")
        assert job.deadline_at - job.created_at == pytest.approx(
            timedelta(seconds=600), abs=timedelta(seconds=2)
        )
        token = tokens.callback_token(job.pk)
        assert job.callback_token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in str(GenerationJob.objects.filter(pk=job.pk).values().get())


class TestSubmit:
    def test_submit_stores_task_and_schedules_first_poll(self, imagegen_settings, sandbox):
        job = create()
        assert services.submit(job.pk) == "submitted"
        job.refresh_from_db()
        assert job.status == Status.SUBMITTED
        assert job.provider_task_id
        assert job.submit_attempts == 1
        # No callbacks configured: the first poll is at the low end of the latency range.
        assert job.next_poll_at > job.submitted_at
        assert sandbox.stats()["submits"] == 1

    def test_second_submit_is_a_no_op(self, imagegen_settings, sandbox):
        job = create()
        services.submit(job.pk)
        assert services.submit(job.pk) == "not-claimed"
        assert sandbox.stats()["submits"] == 1

    def test_transient_error_keeps_job_queued_then_fails_after_max_attempts(
        self, imagegen_settings, settings, sandbox
    ):
        settings.IMAGEGEN = {**imagegen_settings, "SUBMIT_MAX_ATTEMPTS": 2}
        job = create("x [sandbox:submit-http=503]")
        with pytest.raises(TransientError):
            services.submit(job.pk)
        job.refresh_from_db()
        assert job.status == Status.QUEUED
        assert job.lease_until is None
        assert services.submit(job.pk) == "failed"
        job.refresh_from_db()
        assert job.status == Status.FAILED
        assert "2 attempts" in job.error_message

    def test_permanent_error_fails_job(self, imagegen_settings):
        job = create("x [sandbox:submit-http=402]")
        assert services.submit(job.pk) == "failed"
        job.refresh_from_db()
        assert job.status == Status.FAILED
        assert job.error_code == "402"
        assert "balance" in job.error_message

    def test_unknown_outcome_with_callbacks_waits_instead_of_resubmitting(
        self, imagegen_settings, settings
    ):
        # Nothing listens on port 9, but a read that fails after connecting
        # is what "unknown outcome" means; simulate it at the network edge.
        settings.IMAGEGEN = {**imagegen_settings, "CALLBACK_BASE_URL": "https://site.example"}
        job = create()
        from imagegen.providers import get_provider

        provider = get_provider("sandbox")

        def timeout(*args, **kwargs):
            raise httpx.ReadTimeout("read timed out")

        original = provider.client.send
        provider.client.send = timeout
        try:
            assert services.submit(job.pk) == "uncertain"
        finally:
            provider.client.send = original
        job.refresh_from_db()
        assert job.status == Status.QUEUED
        assert job.error_code == "SUBMIT_UNCERTAIN"
        assert job.lease_until > timezone.now() + timedelta(seconds=0.5)
        assert services.submit(job.pk) == "not-claimed"


class TestLifecycle:
    def test_text_to_image_end_to_end(self, imagegen_settings, sandbox):
        job = run_to_end(create(aspect_ratio="16:9"))
        assert job.status == Status.SUCCEEDED, job.error_message
        image = GeneratedImage.objects.get(job=job)
        assert (image.width, image.height) == (1024, 576)
        assert image.content_type == "image/png"
        assert image.file.name == f"imagegen/{job.created_at:%Y/%m}/{job.pk}/0.png"
        stored = get_storage().open(image.file.name).read()
        assert hashlib.sha256(stored).hexdigest() == image.sha256
        original = httpx.get(job.result_urls[0]).content
        # The same image, with its provenance added to the file's metadata.
        assert pixels(stored) == pixels(original)
        assert len(stored) > len(original)
        assert image.prompt == job.prompt
        assert image.settings["aspect_ratio"] == "16:9"
        assert job.charged_cost == job.estimated_cost
        assert job.lease_until is None and job.next_poll_at is None

    def test_provider_failure_fails_job_with_editor_message(self, imagegen_settings):
        job = run_to_end(create("x [sandbox:fail=CONTENT_VIOLATION]"))
        assert job.status == Status.FAILED
        assert job.error_code == "CONTENT_VIOLATION"
        assert "content policy" in job.error_message

    def test_forgotten_task_fails_job(self, imagegen_settings):
        job = run_to_end(create("x [sandbox:forget]"))
        assert job.status == Status.FAILED
        assert "no longer knows" in job.error_message

    @pytest.mark.parametrize("kind", ["html", "truncated", "bomb", "gif"])
    def test_unusable_result_fails_job_and_stores_nothing(self, imagegen_settings, kind):
        job = run_to_end(create(f"x [sandbox:download={kind}]"))
        assert job.status == Status.FAILED
        assert job.error_code == "BAD_RESULT"
        assert not GeneratedImage.objects.filter(job=job).exists()
        storage = get_storage()
        assert not storage.exists(f"imagegen/{job.created_at:%Y/%m}/{job.pk}/0.png")

    def test_endless_slow_download_ends_failed_after_the_attempts(
        self, imagegen_settings, settings
    ):
        settings.IMAGEGEN = {
            **imagegen_settings,
            "DOWNLOAD_TIMEOUT": 1,
            "FINALIZE_MAX_ATTEMPTS": 2,
        }
        job = create("x [sandbox:download=slow]")
        assert services.submit(job.pk) == "submitted"
        poll_until_done(job)
        assert job.status == Status.FINALIZING
        for _ in range(2):
            # Each attempt gives up at the deadline and hands the job back for a retry.
            with pytest.raises(FetchError, match="took too long"):
                services.finalize(job.pk)
        assert services.finalize(job.pk) == "failed"
        job.refresh_from_db()
        assert job.status == Status.FAILED and job.error_code == "STORE_FAILED"
        assert not GeneratedImage.objects.filter(job=job).exists()
        assert not get_storage().exists(f"imagegen/{job.created_at:%Y/%m}/{job.pk}/0.png")

    def test_result_on_disallowed_host_is_refused(self, imagegen_settings, settings, sandbox):
        providers = {
            "sandbox": {
                **imagegen_settings["PROVIDERS"]["sandbox"],
                "ALLOWED_RESULT_HOSTS": ("cdn.example.com",),
            }
        }
        settings.IMAGEGEN = {**imagegen_settings, "PROVIDERS": providers}
        job = run_to_end(create())
        assert job.status == Status.FAILED
        assert "allow" in job.error_message.lower()

    def test_private_result_host_is_refused_by_default(self, imagegen_settings, settings):
        providers = {
            "sandbox": {
                **imagegen_settings["PROVIDERS"]["sandbox"],
                "ALLOW_PRIVATE_HOSTS": False,
                "ALLOWED_RESULT_HOSTS": None,
            }
        }
        settings.IMAGEGEN = {**imagegen_settings, "PROVIDERS": providers}
        job = run_to_end(create())
        assert job.status == Status.FAILED
        assert not GeneratedImage.objects.filter(job=job).exists()


def finished(job, url="http://127.0.0.1:9/x.png", status=TaskStatus.SUCCESS):
    outputs = (Output(url=url),) if status == TaskStatus.SUCCESS else ()
    return TaskState(task_id=job.provider_task_id or "task-1", status=status, outputs=outputs)


class TestTransitions:
    def test_duplicate_success_is_stale(
        self, imagegen_settings, django_capture_on_commit_callbacks
    ):
        job = create()
        services.submit(job.pk)
        job.refresh_from_db()
        with django_capture_on_commit_callbacks() as callbacks:
            assert services.apply_update(job.pk, finished(job), source="callback") == "advanced"
            assert services.apply_update(job.pk, finished(job), source="callback") == "stale"
        assert len(callbacks) == 1  # one finalize enqueued

    def test_late_processing_and_failure_after_success_change_nothing(self, imagegen_settings):
        job = run_to_end(create())
        assert job.status == Status.SUCCEEDED
        for status in (TaskStatus.PROCESSING, TaskStatus.FAILED):
            state = TaskState(task_id=job.provider_task_id, status=status, error_code="X")
            assert services.apply_update(job.pk, state, source="callback") == "stale"
        job.refresh_from_db()
        assert job.status == Status.SUCCEEDED
        assert job.error_code == ""

    def test_processing_moves_submitted_to_running_once(self, imagegen_settings):
        job = create()
        services.submit(job.pk)
        job.refresh_from_db()
        state = TaskState(task_id=job.provider_task_id, status=TaskStatus.PROCESSING)
        assert services.apply_update(job.pk, state, source="poll") == "advanced"
        assert services.apply_update(job.pk, state, source="poll") == "stale"
        job.refresh_from_db()
        assert job.status == Status.RUNNING
        assert job.started_at is not None

    def test_update_for_another_task_is_ignored(self, imagegen_settings):
        job = create()
        services.submit(job.pk)
        other = TaskState(task_id="someone-else", status=TaskStatus.SUCCESS, outputs=(Output("u"),))
        assert services.apply_update(job.pk, other, source="callback") == "stale"

    def test_callback_before_submit_response_completes_job(self, imagegen_settings):
        job = create()
        state = TaskState(task_id="early-task", status=TaskStatus.SUCCESS, outputs=(Output("u"),))
        assert services.apply_update(job.pk, state, source="callback") == "advanced"
        job.refresh_from_db()
        assert job.status == Status.FINALIZING
        assert job.provider_task_id == "early-task"

    def test_terminal_jobs_cannot_be_canceled_or_expired(self, imagegen_settings):
        job = run_to_end(create())
        assert not services.cancel(job.pk)
        assert not services.expire(job.pk)
        job.refresh_from_db()
        assert job.status == Status.SUCCEEDED

    def test_cancel(self, imagegen_settings):
        job = create()
        assert services.cancel(job.pk)
        assert not services.cancel(job.pk)
        assert services.submit(job.pk) == "not-claimed"
        job.refresh_from_db()
        assert job.status == Status.CANCELED

    def test_expire_only_after_deadline(self, imagegen_settings):
        job = create()
        assert not services.expire(job.pk)
        GenerationJob.objects.filter(pk=job.pk).update(deadline_at=timezone.now())
        assert services.expire(job.pk)
        job.refresh_from_db()
        assert job.status == Status.EXPIRED

    def test_duplicate_poll_message_is_a_no_op(self, imagegen_settings, sandbox):
        job = create()
        services.submit(job.pk)
        job.refresh_from_db()
        services.poll(job.pk, job.poll_count)
        calls = sandbox.stats()["status_calls"]
        assert services.poll(job.pk, job.poll_count) == "not-claimed"
        assert sandbox.stats()["status_calls"] == calls

    def test_finalize_twice_makes_one_asset(self, imagegen_settings):
        job = create()
        services.submit(job.pk)
        poll_until_done(job)
        assert services.finalize(job.pk) == "succeeded"
        assert services.finalize(job.pk) == "not-claimed"
        assert GeneratedImage.objects.filter(job=job).count() == 1

    def test_reclaimed_finalize_cannot_commit_with_a_lost_lease(self, imagegen_settings):
        job = create()
        services.submit(job.pk)
        poll_until_done(job)
        # Another worker claimed the job after this one's lease ran out.
        GenerationJob.objects.filter(pk=job.pk).update(finalize_attempts=7)
        from imagegen.services.finalize import _complete

        with pytest.raises(Exception) as info:
            _complete(job, 1, [])
        assert type(info.value).__name__ == "LeaseLostError"


class TestSweep:
    def test_lost_submission_is_resent(self, imagegen_settings, django_capture_on_commit_callbacks):
        job = create()
        GenerationJob.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
        with django_capture_on_commit_callbacks() as callbacks:
            counts = services.sweep()
        assert counts["submit"] == 1
        assert len(callbacks) == 1
        job.refresh_from_db()
        assert job.next_poll_at > timezone.now()
        # Claimed: the next sweep leaves it to the task just sent.
        assert services.sweep()["submit"] == 0

    def test_due_job_is_polled_and_past_deadline_expired(
        self, imagegen_settings, django_capture_on_commit_callbacks
    ):
        due = create()
        services.submit(due.pk)
        late = create()
        services.submit(late.pk)
        now = timezone.now()
        GenerationJob.objects.filter(pk=due.pk).update(next_poll_at=now)
        GenerationJob.objects.filter(pk=late.pk).update(next_poll_at=now, deadline_at=now)
        with django_capture_on_commit_callbacks() as callbacks:
            counts = services.sweep()
        assert counts["poll"] == 1
        assert counts["expired"] == 1
        late.refresh_from_db()
        assert late.status == Status.EXPIRED
        assert len(callbacks) == 2  # the poll task and the expiry signal

    def test_sweep_queries_do_not_grow_with_table(
        self, imagegen_settings, django_assert_max_num_queries
    ):
        now = timezone.now()
        future = now + timedelta(hours=1)
        template = create()
        jobs = [
            GenerationJob(
                provider="sandbox",
                model="gpt-image-2",
                mode="text-to-image",
                prompt=f"p{i}",
                resolution="1k",
                aspect_ratio="auto",
                deadline_at=future,
                next_poll_at=future,
            )
            for i in range(300)
        ]
        GenerationJob.objects.bulk_create(jobs)
        GenerationJob.objects.filter(pk=template.pk).update(next_poll_at=now)
        # The claim and its postponing in a savepoint (4), outbound webhooks,
        # the callback records' purge, due on a new site (its heartbeat, a batch of
        # each kind, its heartbeat again), the capped providers' slots, discarded
        # files, alt text drafts given up and sent again (a savepoint round a
        # locking read), the heartbeat: none of them grows with the table.
        with django_assert_max_num_queries(17):
            counts = services.sweep()
        assert counts["submit"] == 1


def finalizing(job_id, *, attempt=1, lease_seconds=30.0):
    """Put a job in ``finalizing`` as claimed by ``attempt``, its lease running
    for ``lease_seconds`` more (negative: it ran out)."""
    until = timezone.now() + timedelta(seconds=lease_seconds)
    GenerationJob.objects.filter(pk=job_id).update(
        status=Status.FINALIZING, finalize_attempts=attempt, lease_until=until, next_poll_at=until
    )


def holder(job_id, attempt=1):
    """The claim of finalize ``attempt`` on a job, as its lease renews it."""
    return {"pk": job_id, "status": Status.FINALIZING, "finalize_attempts": attempt}


class TestLeases:
    """Leases renewed by the working process (imagegen.services.leases)."""

    @pytest.mark.parametrize("since_claim", ["nothing", "taken over", "finished", "canceled"])
    def test_only_the_holder_renews(self, imagegen_settings, since_claim):
        """What happened to the job since the claim: nothing (the lease moves
        one length ahead, and the sweeper's next look with it); another worker
        took it over, it finished, it was canceled (not renewed, and the
        holder's next check raises LeaseLostError)."""
        job = create()
        finalizing(job.pk, lease_seconds=5)
        lease = Lease(holder(job.pk), 60, limit=280)
        changes = {
            "nothing": {},
            "taken over": {"finalize_attempts": 2},
            "finished": {"status": Status.SUCCEEDED},
            "canceled": {"status": Status.CANCELED},
        }[since_claim]
        GenerationJob.objects.filter(pk=job.pk).update(**changes)
        before = GenerationJob.objects.get(pk=job.pk).lease_until

        renewed = lease.renew()

        job.refresh_from_db()
        if since_claim == "nothing":
            assert renewed
            assert job.lease_until > before + timedelta(seconds=50)
            assert job.next_poll_at == job.lease_until
            lease.check()
        else:
            assert not renewed
            assert job.lease_until == before
            with pytest.raises(LeaseLostError):
                lease.check()

    @pytest.mark.parametrize(
        ("step", "lease"),
        [
            ("submit", "SUBMIT_LEASE"),
            ("finalize", "FINALIZE_LEASE"),
        ],
    )
    def test_a_step_that_will_retry_is_left_to_its_retry(self, imagegen_settings, step, lease):
        """A submission or a finalize that fails transiently gives its lease
        back, for the task's retry (within ``MAX_COUNTDOWN``) to claim the job
        at once; the sweeper's fallback, in case the retry message is lost,
        comes a lease after that: never before the backoff ends."""
        if step == "submit":
            job = create("x [sandbox:submit-http=503]")
            before = timezone.now()
            with pytest.raises(TransientError):
                services.submit(job.pk)
        else:
            job = create("x [sandbox:download=redirect:http://127.0.0.1:9/gone.png]")
            services.submit(job.pk)
            poll_until_done(job)
            before = timezone.now()
            with pytest.raises(FetchError):
                services.finalize(job.pk)
        job.refresh_from_db()
        assert job.lease_until is None
        wait = conf.get_setting("MAX_COUNTDOWN") + conf.get_setting(lease)
        assert job.next_poll_at >= before + timedelta(seconds=wait)

    @pytest.mark.django_db(transaction=True)
    def test_a_thread_renews_the_lease_while_the_work_runs(self, imagegen_settings):
        """Renewed from a thread (the claim is committed: autocommit, as in a
        worker) every quarter of its length, and no more once the block ends."""
        job = create()
        finalizing(job.pk, lease_seconds=0.4)
        seen = set()

        def renewed_twice():
            seen.add(GenerationJob.objects.get(pk=job.pk).lease_until)
            return len(seen) >= 3

        with Lease(holder(job.pk), 0.4, limit=280) as lease:
            wait_until(renewed_twice, timeout=10, interval=0.05, what="two renewals")
            lease.check()
        after = GenerationJob.objects.get(pk=job.pk).lease_until
        wait_until(lambda: timezone.now() > after, what="the last lease to run out")
        assert GenerationJob.objects.get(pk=job.pk).lease_until == after

    @pytest.mark.django_db(transaction=True)
    def test_a_hung_holder_loses_its_lease_at_its_limit(self, imagegen_settings):
        """Past its limit (the task's time limit) a holder renews no more: its
        lease runs out, by its own clock too, though no one took the job."""
        job = create()
        finalizing(job.pk, lease_seconds=0.4)
        before = GenerationJob.objects.get(pk=job.pk).lease_until
        with Lease(holder(job.pk), 0.4, limit=0) as lease:

            def ran_out():
                try:
                    lease.check()
                except LeaseLostError:
                    return True
                return False

            wait_until(ran_out, what="the lease to run out")
        assert GenerationJob.objects.get(pk=job.pk).lease_until == before

    @pytest.mark.django_db(transaction=True)
    def test_a_finalize_taken_over_mid_download_stores_nothing(
        self, imagegen_settings, settings, sandbox
    ):
        settings.IMAGEGEN = {**imagegen_settings, "FINALIZE_LEASE": 1}
        job = create("a slow result [sandbox:download-delay=3]")
        services.submit(job.pk)
        poll_until_done(job)
        assert job.status == Status.FINALIZING

        def take_over():
            try:
                wait_until(lambda: sandbox.stats()["downloads"] >= 1, what="the download")
                GenerationJob.objects.filter(pk=job.pk).update(finalize_attempts=2)
            finally:
                connection.close()

        other_worker = threading.Thread(target=take_over)
        other_worker.start()
        outcome = services.finalize(job.pk)
        other_worker.join()

        assert outcome == "lease-lost"
        job.refresh_from_db()
        assert job.status == Status.FINALIZING  # the new holder's to finish
        assert not GeneratedImage.objects.filter(job=job).exists()
        assert not get_storage().exists(output_name(job, 0, "png"))
