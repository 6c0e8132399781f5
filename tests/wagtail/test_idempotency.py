"""The Wagtail forms' idempotency keys are bound to their user and source.

The family: the same key posted through each entry point (Wagtail's generate
page, Wagtail's image chooser, imagegen's Django admin form) by each of two
users, every ordered pair: the same user through Wagtail (page or chooser:
one form, one source) gets the first job back; another user, or the same
user through the Django admin, makes a job of their own, and the first job
stays theirs.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.urls import reverse

from imagegen.models import GenerationJob

from .conftest import make_wagtail_user
from .test_views import CHOOSER, GENERATE, post_data

pytestmark = pytest.mark.django_db

KEY = "wagtail:shared-key"
ENTRIES = ("page", "chooser", "django-admin")
POSTERS = list(itertools.product(("alice", "bob"), ENTRIES))


def post(client: Any, users: dict[str, Any], poster: tuple[str, str], prompt: str) -> None:
    user, entry = poster
    client.force_login(users[user])
    data = post_data(idempotency_key=KEY, prompt=prompt)
    if entry == "django-admin":
        data.pop("collection")
        response = client.post(reverse("admin:imagegen_generationjob_add"), data)
        assert response.status_code == 302
    else:
        response = client.post(GENERATE if entry == "page" else CHOOSER, data)
        assert response.status_code in (200, 302)


@pytest.fixture
def users(django_user_model: Any) -> dict[str, Any]:
    made = {}
    for name in ("alice", "bob"):
        user = make_wagtail_user(django_user_model, name)
        user.is_staff = True  # the Django admin's form too
        user.save(update_fields=["is_staff"])
        made[name] = user
    return made


@pytest.mark.parametrize(
    ("first", "second"),
    list(itertools.product(POSTERS, POSTERS)),
    ids=[f"{a[0]}-{a[1]}-then-{b[0]}-{b[1]}" for a, b in itertools.product(POSTERS, POSTERS)],
)
def test_same_key(client, users, first, second):
    post(client, users, first, "first")
    (mine,) = GenerationJob.objects.all()
    post(client, users, second, "second")
    same_source = first[0] == second[0] and (first[1] == "django-admin") == (
        second[1] == "django-admin"
    )
    jobs = GenerationJob.objects.order_by("created_at")
    if same_source:
        assert list(jobs) == [mine]
    else:
        assert jobs.count() == 2
        other = jobs.exclude(pk=mine.pk).get()
        assert (other.prompt, other.created_by) == ("second", users[second[0]])
    mine.refresh_from_db()
    assert (mine.prompt, mine.created_by) == ("first", users[first[0]])
    source = "admin" if first[1] == "django-admin" else "wagtail"
    assert mine.idempotency_scope == f"{source}:{users[first[0]].pk}"
