"""Every admin URL of the job and image admins with an object id that names no
object answers 404 or the admin's "doesn't exist" redirect, never 500.

Family: each URL pattern of ``GenerationJobAdmin`` and ``GeneratedImageAdmin``
that takes an object id (change, history, delete, the bare id, the status JSON,
each object action), by GET and POST, crossed with ids that are words, empty-ish,
too long, carry encoded slashes, or are near-UUIDs (valid UUID spellings of no
job, and strings one character away from a UUID).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse

from imagegen.models import GeneratedImage, GenerationJob

from .factories import make_editor, make_image, make_job, messages_of

pytestmark = pytest.mark.django_db

SAMPLE = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")

BAD_IDS = {
    # words, including ones near the admin's own routes
    "word": "cost-report",
    "costs-typo": "costss",
    "add-typo": "addd",
    # empty-ish
    "zero": "0",
    "minus": "-1",
    "dash": "-",
    "space": "%20",
    "null": "null",
    "dot": ".",
    # too long
    "long-word": "x" * 300,
    "long-number": "9" * 40,
    # encoded slashes and admin-quoted characters
    "encoded-slash": "a%2Fb",
    "encoded-dots": "..%2F..%2Fetc",
    "admin-quoted": "a_2Fb",
    "encoded-slash-uuid": f"{SAMPLE}%2Fchange",
    # near-UUIDs: accepted spellings of a UUID no job has, and almost-UUIDs
    "uuid-upper": str(SAMPLE).upper(),
    "uuid-hex": SAMPLE.hex,
    "uuid-braces": "%7B" + str(SAMPLE) + "%7D",
    "uuid-urn": f"urn:uuid:{SAMPLE}",
    "uuid-short": str(SAMPLE)[:-1],
    "uuid-long": f"{SAMPLE}0",
    "uuid-bad-char": str(SAMPLE)[:-1] + "g",
    "uuid-hyphens-moved": str(SAMPLE).replace("-", "")[:10] + "-" + SAMPLE.hex[10:],
}


def object_routes(model: type) -> list[str]:
    """The model admin's URL patterns that take an object id, with the actions
    substituted: ``<ID>/change/``, ``<ID>/actions/cancel_jobs/``..."""
    model_admin = admin.site._registry[model]
    routes = []
    for pattern in model_admin.get_urls():
        route = str(pattern.pattern)
        if not re.search(r"<(path|uuid|str|int):\w+>", route):
            continue
        route = re.sub(r"<(path|uuid|str|int):(object_id|job_id)>", "<ID>", route)
        if "<slug:action>" in route:
            routes += [route.replace("<slug:action>", name) for name in model_admin.actions]
        else:
            routes.append(route)
    return routes


#: Views no user may open, whatever the id: refused with 403 first.
REFUSED_TO_ALL = {(GeneratedImage, "<ID>/delete/")}

ROUTES = [(GenerationJob, route) for route in object_routes(GenerationJob)] + [
    (GeneratedImage, route) for route in object_routes(GeneratedImage)
]


def test_the_family_covers_every_object_route() -> None:
    """The routes under test include change, history, delete, the bare id, the
    status JSON and every action of both admins: a new route joins the family."""
    job_routes = {route for model, route in ROUTES if model is GenerationJob}
    assert {"<ID>/", "<ID>/change/", "<ID>/history/", "<ID>/delete/", "<ID>/status/"} <= job_routes
    for model in (GenerationJob, GeneratedImage):
        actions = admin.site._registry[model].actions
        routes = {route for m, route in ROUTES if m is model}
        assert {f"<ID>/actions/{name}/" for name in actions} <= routes


@pytest.fixture
def staff(client: Any, django_user_model: Any) -> Any:
    """An editor with every imagegen permission the admins check, including
    delete, so no view stops at a permission check before reading the id."""
    user = make_editor(
        django_user_model,
        "imagegen.delete_generationjob",
        "imagegen.view_all_jobs",
        "imagegen.cancel_any_job",
    )
    client.force_login(user)
    # Real objects exist, so "no such object" is about the id, not an empty table.
    job = make_job(user, images=1)
    assert GeneratedImage.objects.filter(job=job).exists()
    make_image(make_job(user), index=0)
    return client


@pytest.mark.parametrize(("model", "route"), ROUTES, ids=[f"{m.__name__}:{r}" for m, r in ROUTES])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_id_that_names_no_object_is_not_found(
    staff: Any, model: type, route: str, method: str
) -> None:
    info = model._meta.app_label, model._meta.model_name
    base = reverse("admin:{}_{}_changelist".format(*info))
    # Object actions accept only POST (405 to a GET); images are never deleted
    # through the admin (403 before any id is read); everything else is 404.
    allowed = {404}
    if "/actions/" in route and method == "get":
        allowed.add(405)
    if (model, route) in REFUSED_TO_ALL:
        allowed.add(403)
    wrong = {}
    for name, bad_id in BAD_IDS.items():
        # The client raises on a 500, naming the URL.
        response = getattr(staff, method)(base + route.replace("<ID>", bad_id), follow=True)
        if response.status_code == 200:
            # The admin's "doesn't exist" answer: back to the index with a message.
            redirected = bool(response.redirect_chain)
            at_index = response.request["PATH_INFO"] == reverse("admin:index")
            said = any("doesn’t exist" in m for m in messages_of(response))
            if not (redirected and at_index and said):
                wrong[name] = f"200 at {response.request['PATH_INFO']}"
        elif response.status_code not in allowed:
            wrong[name] = response.status_code
    assert not wrong, wrong
