"""The example site's URLs plus the baselines of the webhook benchmark (a
bare view, and the durable floor: the raw body stored in one INSERT) and of
the status benchmark (the signed-in floor: a session, its user and a
permission read, as every admin request does, and nothing else)."""

import json

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from project.urls import urlpatterns as site_urlpatterns

#: The durable floor's table, created (and emptied) by benchmarks.webhook_ingest.
CREATE_RAW_TABLE = """
    CREATE TABLE IF NOT EXISTS bench_raw_webhook (
        id bigserial PRIMARY KEY,
        received_at timestamptz NOT NULL DEFAULT now(),
        path text NOT NULL,
        remote_addr inet,
        headers jsonb NOT NULL,
        body bytea NOT NULL
    )
"""
EMPTY_RAW_TABLE = "TRUNCATE bench_raw_webhook"
COUNT_RAW_TABLE = "SELECT count(*) FROM bench_raw_webhook"
INSERT_RAW = (
    "INSERT INTO bench_raw_webhook (path, remote_addr, headers, body) VALUES (%s, %s, %s, %s)"
)


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    """Answers 200 and does nothing: what any view costs in this process layout."""
    return HttpResponse("ok")


@csrf_exempt
def durable(request: HttpRequest) -> HttpResponse:
    """Stores the raw body and headers in one INSERT (committed: autocommit)
    and answers 200: the first thing a careful receiver does (dj-stripe's
    ``WebhookEventTrigger``), before any processing."""
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_RAW,
            [
                request.path,
                request.META.get("REMOTE_ADDR"),
                json.dumps(dict(request.headers)),
                request.body,
            ],
        )
    return HttpResponse("ok")


def signed_in(request: HttpRequest) -> HttpResponse:
    """Answers 200 to a staff session allowed to see jobs, behind the admin's
    login check: what the status JSON pays before reading a job."""
    if not request.user.has_perm("imagegen.view_generationjob"):
        return HttpResponse(status=403)
    return HttpResponse("ok")


urlpatterns = [
    path("bare/", bare),
    path("durable/", durable),
    path("signed-in/", admin.site.admin_view(signed_in, cacheable=True)),
    *site_urlpatterns,
]
