"""Bounds on what a provider answers (issue 13, "Payloads"), by family.

Result URLs in one answer (``MAX_RESULT_URLS``, here the default 10 and 3):
none, one, the maximum, one more, a huge list (100 000), items that are not
URL strings (a number, null, "", an object, a list), the same URL twice.
Checked in ``resultJson`` of a status answer and of a callback (APIXO) and
in ``data`` of an OpenAI answer.

JSON nesting (``MAX_JSON_DEPTH``): arrays, objects and both mixed, just
under, at and above the bound, in the envelope, in ``data`` and in
``resultJson`` (JSON inside a JSON string), and 100 000 levels deep; in a
callback body, a status answer, an OpenAI answer and an error answer.

Answer size (``MAX_CALLBACK_BYTES`` for APIXO, OpenAI's derived from
``MAX_DOWNLOAD_BYTES``): under, at and over the cap, declared by
Content-Length or streamed in chunks without one (read no further than the
cap), compressed although identity was asked for; error answers over it.

Where each ends: a callback is refused (400, recorded, the job unchanged), a
status answer fails the job (``MALFORMED_ANSWER`` or ``ANSWER_TOO_LARGE``)
with nothing downloaded, an OpenAI answer fails the submission
(``INVALID_RESPONSE``); never a 500 or a RecursionError.
"""

from __future__ import annotations

import base64
import gzip
import json
import math

import httpx
import pytest

from imagegen import services, tokens
from imagegen.choices import Status, TaskStatus
from imagegen.exceptions import MalformedCallbackError, PermanentError, TransientError
from imagegen.models import GeneratedImage, WebhookDelivery
from imagegen.providers import GenerationRequest, get_provider
from imagegen.providers.apixo import APIXOProvider, parse_task
from imagegen.providers.base import UnusableAnswer
from imagegen.providers.openai import OpenAIImagesProvider

from .test_callbacks import post
from .test_services import create, run_to_end

URL = "https://cdn.apixo.ai/r/{}.png"


def urls(count):
    return [URL.format(i) for i in range(count)]


def task_data(result_json):
    if not isinstance(result_json, str):
        result_json = json.dumps(result_json)
    return {"taskId": "t-1", "state": "success", "resultJson": result_json}


def envelope(data):
    return json.dumps({"code": 200, "message": "success", "data": data}).encode()


def nest(kind, levels, inner="1"):
    """``inner`` under ``levels`` arrays, objects, or both alternating."""
    text = inner
    for level in range(levels):
        use_array = kind == "array" or (kind == "mixed" and level % 2)
        text = f"[{text}]" if use_array else f'{{"k": {text}}}'
    return text


# --- result URLs ---------------------------------------------------------------

#: (result URLs, what parse_task does: None accepted, else the exception)
URL_FAMILY = {
    "none": ([], MalformedCallbackError),
    "one": (urls(1), None),
    "max": (urls(10), None),
    "max+1": (urls(11), UnusableAnswer),
    "huge": (urls(100_000), UnusableAnswer),
    "number": ([URL.format(0), 42], MalformedCallbackError),
    "null": ([None], MalformedCallbackError),
    "empty": ([""], MalformedCallbackError),
    "object": ([{"url": URL.format(0)}], MalformedCallbackError),
    "list": ([[URL.format(0)]], MalformedCallbackError),
    "duplicate": ([URL.format(0), URL.format(1), URL.format(0)], UnusableAnswer),
    "huge-of-junk": ([0] * 100_000, UnusableAnswer),
}


@pytest.mark.parametrize("name", URL_FAMILY)
def test_result_urls_in_resultjson(name, settings):
    settings.IMAGEGEN = {}
    listed, error = URL_FAMILY[name]
    data = task_data({"resultUrls": listed})
    if error is None:
        assert [o.url for o in parse_task(data).outputs] == listed
    else:
        with pytest.raises(error) as caught:
            parse_task(data)
        if error is UnusableAnswer and len(listed) > 10:
            assert f"carries {len(listed)} results; at most 10" in str(caught.value)


@pytest.mark.parametrize(("count", "accepted"), [(2, True), (3, True), (4, False)])
def test_result_url_bound_is_the_setting(settings, count, accepted):
    settings.IMAGEGEN = {"MAX_RESULT_URLS": 3}
    data = task_data({"resultUrls": urls(count)})
    if accepted:
        assert len(parse_task(data).outputs) == count
    else:
        with pytest.raises(UnusableAnswer, match="at most 3"):
            parse_task(data)


# --- depth in what APIXO sends ------------------------------------------------


def placed(where, document):
    """A callback body with ``document`` (JSON text) in the envelope, in
    ``data`` or inside ``resultJson``."""
    data = task_data({"resultUrls": urls(1)})
    if where == "resultJson":
        data["resultJson"] = f'{{"resultUrls": ["{URL.format(0)}"], "x": {document}}}'
        return envelope(data)
    marker = "__here__"
    if where == "envelope":
        text = json.dumps({"code": 200, "message": "success", "data": data, "x": marker})
    else:
        text = json.dumps({"code": 200, "message": "success", "data": {**data, "x": marker}})
    return text.replace(f'"{marker}"', document).encode()


#: Levels the surroundings add: the envelope 1, data 2, resultJson's object 1.
OUTER = {"envelope": 1, "data": 2, "resultJson": 1}


@pytest.mark.parametrize("where", list(OUTER))
@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
@pytest.mark.parametrize("offset", [-1, 0, 1])
@pytest.mark.parametrize("bound", [8, 32])
def test_callback_depth_under_at_and_over_the_bound(settings, where, kind, offset, bound):
    settings.IMAGEGEN = {"MAX_JSON_DEPTH": bound}
    body = placed(where, nest(kind, bound - OUTER[where] + offset))
    provider = APIXOProvider("apixo", {"MODEL": "gpt-image-2"})
    if offset <= 0:
        assert provider.parse_callback(body, {}).outputs[0].url == URL.format(0)
    else:
        with pytest.raises(UnusableAnswer, match=f"nested more than {bound} levels deep"):
            provider.parse_callback(body, {})


@pytest.mark.parametrize("where", list(OUTER))
def test_callback_far_too_deep(settings, where):
    settings.IMAGEGEN = {}
    body = placed(where, nest("array", 100_000))
    with pytest.raises(UnusableAnswer):
        APIXOProvider("apixo", {"MODEL": "gpt-image-2"}).parse_callback(body, {})


#: Callback bodies, each refused: too many URLs, the same URL twice, deep in
#: each place, far too deep.
HOSTILE_CALLBACKS = {
    "max+1": lambda: envelope(task_data({"resultUrls": urls(11)})),
    "huge-list": lambda: envelope(task_data({"resultUrls": urls(3000)})),
    "duplicate": lambda: envelope(task_data({"resultUrls": [URL.format(0)] * 2})),
    "deep-envelope": lambda: placed("envelope", nest("mixed", 40)),
    "deep-data": lambda: placed("data", nest("object", 40)),
    "deep-resultJson": lambda: placed("resultJson", nest("array", 40)),
    "far-too-deep": lambda: placed("data", nest("array", 100_000)),
}


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", HOSTILE_CALLBACKS)
def test_hostile_callback_is_400_recorded_and_changes_nothing(client, imagegen_settings, name):
    job = services.create_job(prompt="a red bicycle")
    job.__class__.objects.filter(pk=job.pk).update(status=Status.SUBMITTED, provider_task_id="t-1")
    response = post(client, job, HOSTILE_CALLBACKS[name]())
    assert response.status_code == 400
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED
    assert job.result_urls in ([], None)
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.MALFORMED
    assert tokens.callback_token(job.pk) not in delivery.error


# --- status answers over real HTTP (the sandbox) -----------------------------

#: Sandbox markers that make the status answer hostile, and the job's error code.
HOSTILE_STATUS = {
    "[sandbox:result-urls=11]": "MALFORMED_ANSWER",
    "[sandbox:result-urls=2000]": "MALFORMED_ANSWER",
    "[sandbox:answer=duplicate-urls]": "MALFORMED_ANSWER",
    "[sandbox:answer=deep]": "MALFORMED_ANSWER",
    "[sandbox:answer=deep-result]": "MALFORMED_ANSWER",
    "[sandbox:answer=huge]": "ANSWER_TOO_LARGE",
}


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize("marker", HOSTILE_STATUS)
def test_hostile_status_answer_fails_the_job_and_downloads_nothing(
    imagegen_settings, sandbox, marker
):
    job = run_to_end(create(f"x {marker} [sandbox:latency=0.1]"))
    assert job.status == Status.FAILED
    assert job.error_code == HOSTILE_STATUS[marker]
    assert job.error_message
    assert sandbox.stats()["downloads"] == 0
    assert not GeneratedImage.objects.filter(job=job).exists()


@pytest.mark.services
@pytest.mark.django_db
def test_status_answer_with_the_maximum_of_urls_is_read(imagegen_settings, sandbox):
    provider = get_provider("sandbox")
    submission = provider.submit(_request("x [sandbox:result-urls=10] [sandbox:latency=0]"))
    state = provider.fetch(submission.task_id)
    assert state.status == TaskStatus.SUCCESS
    assert len(state.outputs) == 10


def _request(prompt):
    return GenerationRequest(
        mode="text-to-image", prompt=prompt, resolution="1k", aspect_ratio="1:1"
    )


# --- the size cap, at the network edge ----------------------------------------


def status_body(size):
    """A status answer of exactly ``size`` bytes (padded)."""
    base = envelope({**task_data({"resultUrls": urls(1)}), "pad": ""})
    assert size >= len(base)
    return base.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(base)) + b'"')


class Chunks:
    """A response body sent in 1 KiB chunks, counting what was read."""

    def __init__(self, data):
        self.data, self.sent = data, 0

    def __iter__(self):
        for start in range(0, len(self.data), 1024):
            self.sent += len(self.data[start : start + 1024])
            yield self.data[start : start + 1024]


def apixo_with(handler, limit=4096):
    provider = APIXOProvider(
        "apixo", {"BASE_URL": "https://api.test/v1", "API_KEY": "k", "MODEL": "gpt-image-2"}
    )
    provider._client = httpx.Client(transport=httpx.MockTransport(handler))
    return provider


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("size", "accepted"), [(4000, True), (4096, True), (4097, False)])
def test_status_answer_size_cap(settings, declared, size, accepted):
    settings.IMAGEGEN = {"MAX_CALLBACK_BYTES": 4096}
    body = status_body(size)
    stream = Chunks(body)

    def handler(request):
        assert request.headers["accept-encoding"] == "identity"
        if declared:
            return httpx.Response(200, content=body)
        return httpx.Response(200, content=stream)

    provider = apixo_with(handler)
    if accepted:
        assert provider.fetch("t-1").outputs[0].url == URL.format(0)
        return
    with pytest.raises(PermanentError) as caught:
        provider.fetch("t-1")
    assert caught.value.code == "ANSWER_TOO_LARGE"
    assert "larger than 4096 bytes" in str(caught.value)
    if not declared:
        assert stream.sent <= 4096 + 1024  # read no further than the cap


def test_compressed_answer_counts_its_decoded_size(settings):
    settings.IMAGEGEN = {"MAX_CALLBACK_BYTES": 4096}
    bomb = gzip.compress(status_body(1_000_000))
    assert len(bomb) < 4096

    def handler(request):
        return httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})

    with pytest.raises(PermanentError, match="larger than 4096"):
        apixo_with(handler).fetch("t-1")


@pytest.mark.parametrize(
    "body",
    [
        b"x" * 100_000,
        ("[" * 100_000).encode(),
        b'{"message": ' + nest("array", 5000).encode() + b"}",
    ],
    ids=["large", "deep-unclosed", "deep"],
)
def test_error_answers_keep_their_status_whatever_their_body(settings, body):
    settings.IMAGEGEN = {"MAX_CALLBACK_BYTES": 4096}

    def handler(request):
        return httpx.Response(503, content=body)

    with pytest.raises(TransientError) as caught:
        apixo_with(handler).fetch("t-1")
    assert caught.value.status_code == 503


# --- OpenAI answers -------------------------------------------------------------


def openai_with(handler):
    provider = OpenAIImagesProvider("openai", {"API_KEY": "k", "BASE_URL": "https://api.test/v1"})
    provider._client = httpx.Client(transport=httpx.MockTransport(handler))
    return provider


def openai_answer(items):
    return json.dumps({"created": 1, "data": items}).encode()


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 100).decode()

OPENAI_FAMILY = {
    "one": ([{"b64_json": PNG}], None),
    "max": ([{"b64_json": PNG}] * 10, None),
    "max+1": ([{"b64_json": PNG}] * 11, "at most 10"),
    "max+1-urls": ([{"url": u} for u in urls(11)], "at most 10"),
    "huge": ([{"b64_json": PNG}] * 20_000, "at most 10"),
    "duplicate-urls": ([{"url": URL.format(0)}] * 2, "same result URL"),
    "none": ([], "no images"),
    "deep": (json.loads(nest("array", 20, "[]")), "nested more than"),
}


@pytest.mark.parametrize("name", OPENAI_FAMILY)
def test_openai_answer_family(settings, name):
    settings.IMAGEGEN = {"MAX_JSON_DEPTH": 16}
    items, problem = OPENAI_FAMILY[name]

    def handler(request):
        return httpx.Response(200, content=openai_answer(items))

    provider = openai_with(handler)
    if problem is None:
        result = provider.submit(_request("a cat")).result
        assert len(result.outputs) == len(items)
        return
    with pytest.raises(PermanentError, match=problem) as caught:
        provider.submit(_request("a cat"))
    assert caught.value.code == "INVALID_RESPONSE"


@pytest.mark.parametrize(
    ("image_bytes", "accepted"), [(29_999, True), (30_000, True), (30_600, True), (31_000, False)]
)
def test_openai_cap_fits_one_image_of_the_download_cap(settings, image_bytes, accepted):
    settings.IMAGEGEN = {"MAX_DOWNLOAD_BYTES": 30_000, "MAX_CALLBACK_BYTES": 1000}
    provider = openai_with(lambda request: None)
    assert provider.answer_limit() == 4 * math.ceil(30_000 / 3) + 1000
    body = openai_answer([{"b64_json": base64.b64encode(b"\0" * image_bytes).decode()}])

    def handler(request):
        return httpx.Response(200, content=Chunks(body))

    provider = openai_with(handler)
    assert (len(body) <= provider.answer_limit()) is accepted
    if accepted:
        assert provider.submit(_request("a cat")).result.outputs[0].data == b"\0" * image_bytes
    else:
        with pytest.raises(PermanentError) as caught:
            provider.submit(_request("a cat"))
        assert caught.value.code == "ANSWER_TOO_LARGE"


def test_openai_default_cap_allows_a_4k_png(settings):
    settings.IMAGEGEN = {}
    provider = OpenAIImagesProvider("openai", {"API_KEY": "k"})
    # A 4096x4096 RGBA PNG that does not compress at all, as base64.
    assert provider.answer_limit() > 4 * math.ceil(4096 * 4096 * 4 / 3)
