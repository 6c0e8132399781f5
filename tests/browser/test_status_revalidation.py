"""The job page's status reads in real Chromium revalidate (ETag, 304) and
the page stays live through them (issue 17, live progress at scale).

For each member of the family (the editor of docs/admin.md, a superuser),
on a running job's page: the browser revalidates its reads of an
unchanged status (If-None-Match with the ETag it holds, which the server
keeps: 304); across them the bar and the clock run on from the last full
read (status_poll.js); a change of the job (a new status) is a
new ETag, and the page shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from imagegen.choices import Status
from imagegen.models import GenerationJob

from ..factories import make_job
from .test_review_in_place import open_job, user, usual_latency  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def _revalidated(response: Any) -> bool:
    """A status read the browser revalidated and the server found unchanged:
    it sent the ETag it held (If-None-Match) and kept it. The page's fetch
    sees the stored answer, so Playwright reports it as 200, not 304."""
    if "/status/" not in response.url:
        return False
    sent = response.request.all_headers().get("if-none-match")
    return sent is not None and sent == response.all_headers().get("etag")


def _changed(etag: str) -> Callable[[Any], bool]:
    return lambda response: (
        "/status/" in response.url and response.all_headers().get("etag") not in (None, etag)
    )


def test_unchanged_reads_are_304_and_the_page_runs_on(
    user: Any,  # noqa: F811
    usual_latency: dict[str, Any],  # noqa: F811
    page: Any,
    open_job: Callable[[Any], None],  # noqa: F811
) -> None:
    job = make_job(user, status=Status.RUNNING)
    with page.expect_response(lambda response: "/status/" in response.url) as first:
        open_job(job)
    etag = first.value.all_headers()["etag"]
    track = page.locator("#imagegen-bar-track")
    elapsed = page.locator("#imagegen-elapsed")
    page.wait_for_function(
        "() => document.querySelector('#imagegen-bar-track').getAttribute('aria-valuenow')"
    )
    before = (int(track.get_attribute("aria-valuenow")), elapsed.inner_text())
    # Two revalidations in a row (the server's 304 to them: tests/test_status_etag.py).
    for _ in range(2):
        page.wait_for_event("response", _revalidated)
    page.wait_for_function(
        "(before) => Number(document.querySelector('#imagegen-bar-track')"
        ".getAttribute('aria-valuenow')) > before",
        arg=before[0],
    )
    assert elapsed.inner_text() != before[1]
    assert page.locator("#imagegen-status").get_attribute("data-status") == Status.RUNNING
    # The job moves on: a new ETag, a full answer, and the page says so.
    GenerationJob.objects.filter(pk=job.pk).update(status=Status.FINALIZING)
    page.wait_for_event("response", _changed(etag))
    page.wait_for_function(
        "() => document.querySelector('#imagegen-status').dataset.status === 'finalizing'"
    )
