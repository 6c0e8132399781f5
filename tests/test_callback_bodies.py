"""Callback bodies and headers the database cannot store as text (issue 13, Callbacks).

PostgreSQL refuses NUL in text (and ``\\u0000`` in jsonb), and no database
stores a lone surrogate: such input is recorded escaped and answered 400,
never 503 "database unavailable" (which the provider would retry for ever)
nor 500. Run on PostgreSQL (the default) and SQLite.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.urls import reverse

from imagegen import tokens
from imagegen.choices import Status
from imagegen.models import GenerationJob, WebhookDelivery

from .factories import make_job

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def envelope(task_id: str = "task-own", **data: Any) -> str:
    payload = {"taskId": task_id, "state": "processing", "failCode": "", "failMsg": ""}
    payload.update(data)
    return json.dumps({"code": 200, "message": "success", "data": payload})


VALID = envelope().encode()

#: Bodies that are not UTF-8 text without NUL: NUL at the start, in the
#: middle, at the end (valid JSON around it); invalid UTF-8 (a stray
#: continuation byte, 0xff, a lead byte without its continuation, a
#: truncated sequence at the end); overlong encodings (of "/", of NUL, a
#: three-byte one); a surrogate encoded in UTF-8 (CESU); NUL alone.
RAW_BODIES = {
    "nul-start": b"\x00" + VALID,
    "nul-middle": VALID[:20] + b"\x00" + VALID[20:],
    "nul-end": VALID + b"\x00",
    "nul-only": b"\x00",
    "continuation-byte": VALID[:20] + b"\x80" + VALID[20:],
    "byte-ff": b"\xff" + VALID,
    "lead-without-continuation": VALID[:20] + b"\xc3\x28" + VALID[20:],
    "truncated-sequence": VALID + b"\xe2\x82",
    "overlong-slash": VALID[:20] + b"\xc0\xaf" + VALID[20:],
    "overlong-nul": VALID[:20] + b"\xc0\x80" + VALID[20:],
    "overlong-three-bytes": VALID[:20] + b"\xe0\x80\xaf" + VALID[20:],
    "encoded-surrogate": VALID[:20] + b"\xed\xa0\x80" + VALID[20:],
}

#: Valid UTF-8 JSON whose escapes decode to what no database stores: NUL
#: and lone surrogates (high, low, reversed pair) in each text field.
ESCAPED_BODIES = {
    # A failure report: its code and message are what the job would keep.
    f"{name}-in-{field}": envelope(
        **{"state": "failed", "failCode": "F", "failMsg": "m", field: f"a{text}b"}
    ).encode()
    # json.dumps writes these characters as the escapes \u0000, \ud800...
    for name, text in {
        "nul": "\x00",
        "high-surrogate": "\ud800",
        "low-surrogate": "\udfff",
        "reversed-pair": "\udc00\ud800",
    }.items()
    for field in ("taskId", "failMsg", "failCode")
} | {
    "nul-in-result-url": envelope(
        state="success", resultJson=json.dumps({"resultUrls": ["http://127.0.0.1:9/\x00.png"]})
    ).encode(),
    "surrogate-in-result-url": envelope(
        state="success", resultJson='{"resultUrls": ["http://127.0.0.1:9/\\ud800.png"]}'
    ).encode(),
}


@pytest.fixture
def job(imagegen_settings: Any) -> GenerationJob:
    return make_job(status=Status.SUBMITTED, provider_task_id="task-own")


def post(client: Any, job_id: Any, content: bytes, token: str | None = None, **extra: Any) -> Any:
    token = tokens.callback_token(job_id) if token is None else token
    path = reverse(
        "imagegen:callback", kwargs={"provider": "sandbox", "job_id": job_id, "token": token}
    )
    return client.post(path, content, content_type="application/json", **extra)


def stored_as_text(delivery: WebhookDelivery) -> None:
    """What was stored reads back as text a database accepts."""
    for text in (delivery.body, delivery.error, *delivery.headers.values()):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate


@pytest.mark.parametrize("content", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_body_that_is_not_storable_text_is_recorded_escaped_with_400(
    client: Any, job: GenerationJob, content: bytes
) -> None:
    """Family: RAW_BODIES, with the job's token. 400, the job unchanged, the
    delivery recorded with every byte that is not UTF-8 (and NUL) as a
    backslash escape, which the error says."""
    response = post(client, job.pk, content)

    assert response.status_code == 400
    assert GenerationJob.objects.get(pk=job.pk).status == Status.SUBMITTED
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.status_code) == ("malformed", 400)
    assert delivery.body == content.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    assert "backslash escapes" in delivery.error
    stored_as_text(delivery)


@pytest.mark.parametrize("content", ESCAPED_BODIES.values(), ids=ESCAPED_BODIES.keys())
def test_json_escapes_of_unstorable_text_are_refused_with_400(
    client: Any, job: GenerationJob, content: bytes
) -> None:
    """Family: ESCAPED_BODIES (``\\u0000`` and lone surrogates in every
    text field, result URLs included). The body itself is stored as sent
    (it is ASCII); the report is refused with 400, the job unchanged."""
    response = post(client, job.pk, content)

    assert response.status_code == 400
    job_after = GenerationJob.objects.get(pk=job.pk)
    assert (job_after.status, job_after.provider_task_id) == (Status.SUBMITTED, "task-own")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.status_code) == ("malformed", 400)
    assert delivery.body == content.decode()
    assert delivery.error == "The callback carries NUL or lone surrogate characters."
    stored_as_text(delivery)


@pytest.mark.parametrize("sender", ["wrong-token", "unknown-job"])
@pytest.mark.parametrize("content", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_unauthenticated_unstorable_body_is_recorded_not_503(
    client: Any, job: GenerationJob, content: bytes, sender: str
) -> None:
    """Family: RAW_BODIES x (a wrong token, an unknown job): 403 / 404,
    recorded escaped, never 503."""
    if sender == "wrong-token":
        response, expected = post(client, job.pk, content, token="x" * 64), 403
    else:
        response, expected = post(client, uuid.uuid4(), content, token="x" * 64), 404

    assert response.status_code == expected
    delivery = WebhookDelivery.objects.get()
    assert delivery.status_code == expected
    stored_as_text(delivery)


#: Header values no database stores as text, and the stored form: NUL at
#: the start, middle and end; lone surrogates (as a server that decodes
#: headers with surrogateescape would pass undecodable bytes); Latin-1 (as
#: WSGI decodes every header) is kept as it is.
HEADER_VALUES = {
    "nul-start": ("\x00agent", "\\x00agent"),
    "nul-middle": ("age\x00nt", "age\\x00nt"),
    "nul-end": ("agent\x00", "agent\\x00"),
    "surrogate-escaped-byte": ("agent\udcff", "agent\\udcff"),
    "lone-high-surrogate": ("\ud800agent", "\\ud800agent"),
    "latin-1": ("agent \xe9\xff", "agent \xe9\xff"),
}


@pytest.mark.parametrize("header", ["HTTP_USER_AGENT", "CONTENT_TYPE"])
@pytest.mark.parametrize(("value", "stored"), HEADER_VALUES.values(), ids=HEADER_VALUES.keys())
def test_unstorable_header_values_are_recorded_escaped(
    client: Any, job: GenerationJob, header: str, value: str, stored: str
) -> None:
    """Family: HEADER_VALUES in each kept header. The header does not make a
    valid callback fail (User-Agent: 200, the job moves) or a 503; the value
    is stored escaped. A Content-Type the parser does not read is only
    recorded."""
    path = reverse(
        "imagegen:callback",
        kwargs={"provider": "sandbox", "job_id": job.pk, "token": tokens.callback_token(job.pk)},
    )
    response = client.generic(
        "POST", path, VALID, **{"CONTENT_TYPE": "application/json", header: value}
    )

    assert response.status_code == 200
    assert GenerationJob.objects.get(pk=job.pk).status == Status.RUNNING
    delivery = WebhookDelivery.objects.get()
    name = "User-Agent" if header == "HTTP_USER_AGENT" else "Content-Type"
    assert delivery.headers[name] == stored
    stored_as_text(delivery)
