"""The Wagtail job status JSON while the database is unavailable: a JSON 503
with ``Retry-After``, although Wagtail wraps the view in its admin-access
check, which reads the session and the user from the database before the
view runs; and the status again once the database is back.

The database is cut for real, as in ``tests/test_api_outage.py``: the live
server's request threads reach PostgreSQL through a TCP proxy.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from imagegen.api.outage import RETRY_AFTER
from imagegen.choices import Status

from ..factories import make_job
from ..faults.proxy import TCPProxy
from ..test_api_outage import database_proxy  # noqa: F401 (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_wagtail_status_json_answers_503_while_the_database_is_down(
    database_proxy: TCPProxy,  # noqa: F811 (fixture)
    live_server: Any,
    wagtail_editor: Any,
) -> None:
    """With ATOMIC_REQUESTS off and on (the fixture's parameters): the
    status stays JSON (``{"error": ...}``, 503, Retry-After) while the
    database is down, and is the job's status once it is back."""
    job = make_job(wagtail_editor, status=Status.RUNNING)
    client = Client()
    client.force_login(wagtail_editor)
    url = live_server.url + reverse("imagegen_wagtail:status", args=[job.pk])
    cookies = {"sessionid": client.cookies["sessionid"].value}

    database_proxy.cut()
    response = httpx.get(url, cookies=cookies, timeout=20)

    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Retry-After"] == str(RETRY_AFTER)
    assert set(response.json()) == {"error"}

    database_proxy.restore()
    response = httpx.get(url, cookies=cookies, timeout=20)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == Status.RUNNING
