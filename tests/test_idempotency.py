"""Idempotency keys are bound to their user and their source.

The family: a caller is a (user, source) pair; users alice, bob and no user
(automation, the command line); sources ``admin``, ``wagtail``, ``api``,
``retry`` and none (a key passed without a source). The same key from
every ordered pair of callers:

- the same caller gets its first job back, and no second job is made;
- any other caller makes a job of its own: never the other's job, which
  stays as it was.

Through the real entry points: the admin form (a user posting another
user's key), the retry service and action (another user's retry of the
same job), and concurrent double-submits on PostgreSQL (one job per
caller, however many threads). Keys the model cannot store and malformed
sources are refused, nothing saved. (The Wagtail form: tests/wagtail.)
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from imagegen import services
from imagegen.choices import Status
from imagegen.models import GenerationJob
from imagegen.services.jobs import DEFAULT_IDEMPOTENCY_SOURCE, idempotency_scope, job_for_key

from .conftest import require_postgres
from .factories import make_editor, make_job, messages_of
from .test_admin_jobs import form_data
from .test_races import run_together

# On every database: the SQLite pass runs them too.
pytestmark = pytest.mark.services

USERS = ("alice", "bob", None)
SOURCES = ("admin", "wagtail", "api", "retry", "")
CALLERS = list(itertools.product(USERS, SOURCES))


def caller_id(caller: tuple[str | None, str]) -> str:
    user, source = caller
    return f"{user or 'nobody'}@{source or 'default'}"


@pytest.fixture
def users(django_user_model: Any) -> dict[str | None, Any]:
    return {
        "alice": make_editor(django_user_model, username="alice"),
        "bob": make_editor(django_user_model, username="bob"),
        None: None,
    }


def create(users: dict, caller: tuple[str | None, str], key: str, **extra: Any) -> GenerationJob:
    user, source = caller
    return services.create_job(
        prompt="a kite", user=users[user], idempotency_key=key, idempotency_source=source, **extra
    )


@pytest.mark.django_db
class TestEveryPairOfCallers:
    @pytest.mark.parametrize(
        ("first", "second"),
        list(itertools.product(CALLERS, CALLERS)),
        ids=[f"{caller_id(a)}-then-{caller_id(b)}" for a, b in itertools.product(CALLERS, CALLERS)],
    )
    def test_same_key(self, imagegen_settings, users, first, second):
        mine = create(users, first, "k-1")
        again = create(users, second, "k-1", resolution="2k")
        if first == second:
            assert again.pk == mine.pk
            assert GenerationJob.objects.count() == 1
        else:
            assert again.pk != mine.pk
            assert GenerationJob.objects.count() == 2
            assert again.created_by == users[second[0]]
            assert again.resolution == "2k"
        mine.refresh_from_db()
        assert mine.created_by == users[first[0]]
        assert mine.resolution == "1k"
        # Each finds its own job, and only its own.
        assert job_for_key(users[first[0]], first[1], "k-1") == mine
        assert job_for_key(users[second[0]], second[1], "k-1") == again

    @pytest.mark.parametrize("caller", CALLERS, ids=caller_id)
    def test_the_stored_scope_names_source_and_user(self, imagegen_settings, users, caller):
        job = create(users, caller, "k-2")
        user, source = caller
        owner = users[user].pk if user else "-"
        assert job.idempotency_scope == f"{source or DEFAULT_IDEMPOTENCY_SOURCE}:{owner}"
        assert job.idempotency_key == "k-2"

    @pytest.mark.parametrize("caller", CALLERS, ids=caller_id)
    def test_no_key_never_finds_a_job(self, imagegen_settings, users, caller):
        first, second = create(users, caller, ""), create(users, caller, "")
        assert first.pk != second.pk
        assert (first.idempotency_scope, second.idempotency_scope) == ("", "")
        assert job_for_key(users[caller[0]], caller[1], "") is None


class TestRefusals:
    @pytest.mark.django_db
    @pytest.mark.parametrize(
        "key", ["k" * 101, "a\x00b", "line\nbreak", "tab\tkey", "del\x7f", "c1\x85"]
    )
    def test_a_key_the_model_cannot_store_is_refused(self, imagegen_settings, users, key):
        with pytest.raises(ValidationError) as info:
            create(users, ("alice", "admin"), key)
        assert "idempotency_key" in info.value.error_dict
        assert not GenerationJob.objects.exists()

    @pytest.mark.parametrize("source", ["Admin", "a:b", "1st", "x" * 21, "api ", "ä"])
    def test_a_malformed_source_is_a_programming_error(self, source):
        with pytest.raises(ValueError, match="Idempotency source"):
            idempotency_scope(None, source)

    def test_a_long_primary_key_still_fits_the_scope(self):
        fits = SimpleNamespace(pk="x" * 56, is_authenticated=True)
        assert idempotency_scope(fits, "wagtail") == "wagtail:" + "x" * 56
        for pk in ("x" * 57, "y" * 200):
            user = SimpleNamespace(pk=pk, is_authenticated=True)
            scope = idempotency_scope(user, "wagtail")
            assert len(scope) <= 64
            assert scope.startswith("wagtail:#")
        long_a = SimpleNamespace(pk="a" * 100, is_authenticated=True)
        long_b = SimpleNamespace(pk="a" * 99 + "b", is_authenticated=True)
        assert idempotency_scope(long_a, "api") != idempotency_scope(long_b, "api")

    def test_an_anonymous_user_is_no_user(self):
        from django.contrib.auth.models import AnonymousUser

        assert idempotency_scope(AnonymousUser(), "api") == idempotency_scope(None, "api")


@pytest.mark.django_db
class TestAdminForm:
    """One editor posting the form with the key another editor's form carried."""

    def test_another_users_key_makes_a_job_of_ones_own(self, client, imagegen_settings, users):
        key = "admin:shared"
        client.force_login(users["bob"])
        client.post(reverse("admin:imagegen_generationjob_add"), form_data(idempotency_key=key))
        bobs = GenerationJob.objects.get()
        client.force_login(users["alice"])
        response = client.post(
            reverse("admin:imagegen_generationjob_add"),
            form_data(idempotency_key=key, prompt="alice's own"),
        )
        alices = GenerationJob.objects.exclude(pk=bobs.pk).get()
        assert response.status_code == 302
        assert response["Location"] == reverse(
            "admin:imagegen_generationjob_change", args=[alices.pk]
        )
        assert (alices.created_by, alices.prompt) == (users["alice"], "alice's own")
        bobs.refresh_from_db()
        assert bobs.created_by == users["bob"]
        # Alice posting again gets hers back; no third job.
        client.post(reverse("admin:imagegen_generationjob_add"), form_data(idempotency_key=key))
        assert GenerationJob.objects.count() == 2


@pytest.mark.django_db
class TestRetry:
    @pytest.mark.parametrize(
        ("first", "second"),
        list(itertools.product(USERS, USERS)),
        ids=[f"{a or 'nobody'}-then-{b or 'nobody'}" for a, b in itertools.product(USERS, USERS)],
    )
    def test_a_retry_is_its_users(self, imagegen_settings, users, first, second):
        failed = make_job(users["alice"], status=Status.FAILED)
        mine, made = services.retry(failed, user=users[first])
        assert made and mine.created_by == users[first]
        again, made_again = services.retry(failed, user=users[second])
        if first == second:
            assert (again.pk, made_again) == (mine.pk, False)
        else:
            assert made_again and again.pk != mine.pk
            assert again.created_by == users[second]
        assert again.retry_of == failed

    def test_a_retry_made_before_scoped_keys_is_found_by_its_link(self, imagegen_settings, users):
        """Retries saved before migration 0007 carry the key ``retry:<job id>`` and no scope."""
        failed = make_job(users["alice"], status=Status.FAILED)
        old = make_job(
            users["alice"],
            status=Status.QUEUED,
            retry_of=failed,
            idempotency_key=f"retry:{failed.pk}",
        )
        assert services.retry(failed, user=users["alice"]) == (old, False)
        bobs, made = services.retry(failed, user=users["bob"])
        assert made and bobs.pk != old.pk

    def test_the_action_never_links_another_users_retry(
        self, client, imagegen_settings, django_user_model, users
    ):
        boss = make_editor(django_user_model, "imagegen.view_all_jobs", username="boss")
        failed = make_job(users["alice"], status=Status.FAILED)
        alices, _made = services.retry(failed, user=users["alice"])
        client.force_login(boss)
        url = reverse("admin:imagegen_generationjob_action", args=[failed.pk, "retry_jobs"])
        response = client.post(url, follow=True)
        boss_retry = GenerationJob.objects.get(retry_of=failed, created_by=boss)
        assert response.redirect_chain[-1][0] == reverse(
            "admin:imagegen_generationjob_change", args=[boss_retry.pk]
        )
        assert not any(str(alices.pk) in message for message in messages_of(response))
        response = client.post(url, follow=True)
        (message,) = messages_of(response)
        assert "was already retried" in message and str(boss_retry.pk) in message
        assert GenerationJob.objects.filter(retry_of=failed).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestConcurrentDoubleSubmit:
    """Threads posting the same key at the same instant, on PostgreSQL."""

    @pytest.mark.parametrize(
        "caller", [("alice", "admin"), (None, "api"), ("bob", "")], ids=caller_id
    )
    def test_one_caller_makes_one_job(self, imagegen_settings, users, caller):
        require_postgres("concurrent inserts racing on the unique key")
        jobs = run_together([lambda: create(users, caller, "race").pk] * 4)
        assert len(set(jobs)) == 1
        assert GenerationJob.objects.count() == 1

    def test_two_callers_make_two_jobs(self, imagegen_settings, users):
        require_postgres("concurrent inserts racing on the unique key")
        callers = [("alice", "admin"), ("bob", "admin")] * 2
        jobs = run_together([lambda c=c: (c, create(users, c, "race").pk) for c in callers])
        by_caller: dict[Any, set] = {}
        for caller, pk in jobs:
            by_caller.setdefault(caller, set()).add(pk)
        assert all(len(pks) == 1 for pks in by_caller.values())
        assert GenerationJob.objects.count() == 2
        assert set(GenerationJob.objects.values_list("created_by__username", flat=True)) == {
            "alice",
            "bob",
        }

    def test_concurrent_retries_of_one_user_make_one(self, imagegen_settings, users):
        require_postgres("concurrent inserts racing on the unique key")
        failed = make_job(users["alice"], status=Status.FAILED)
        results = run_together([lambda: services.retry(failed, user=users["alice"])] * 4)
        assert len({job.pk for job, _made in results}) == 1
        assert sum(made for _job, made in results) == 1
