"""Library images as references: the signed URL a provider fetches them from
(imagegen.contrib.wagtail.references) and the form's picker (library.py).

The signed URL's family, each member through the real view (no login):

- valid: a token the site signed, for an image a waiting job (queued,
  submitted, running; before its deadline) sends as this URL → 200 with the
  rendition's bytes (GET), the same headers and no body (HEAD);
- expired: the job that sends it is past its deadline, or finished
  (succeeded, failed, canceled, expired), or finalizing → 404;
- tampered: a character of the payload or of the signature changed, the
  signature cut off, the timestamp changed, garbage → 404;
- other image id: a validly signed token for another image, not sent by any
  job → 404; the URL a job sends serves its image, never another;
- wrong kind of token: signed with another salt (another signing use of the
  site), the right salt with another payload kind or a non-integer id, an
  imagegen callback token, Wagtail's own image-serve signature → 404;
- methods: GET and HEAD answer, POST, PUT, PATCH and DELETE are 405.

Every refusal is the same 404 body, so nothing says which image a token named.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image as PILImage
from wagtail.images import get_image_model
from wagtail.images.utils import generate_signature
from wagtail.models import Collection

from imagegen import tokens
from imagegen.choices import Mode, Status
from imagegen.contrib.wagtail import references
from imagegen.contrib.wagtail.forms import WagtailGenerateForm
from imagegen.contrib.wagtail.library import initial_references
from imagegen.providers import GenerationRequest
from imagegen.providers.openai import OpenAIImagesProvider
from imagegen.sandbox import SandboxConfig, SandboxServer

from ..factories import make_image, make_job
from .conftest import grant_images, make_wagtail_user

pytestmark = pytest.mark.django_db

PUBLIC = "https://cms.example.org"


@pytest.fixture
def public_urls(settings: Any) -> None:
    """The site's URLconf with the public URLs, and a public origin."""
    settings.ROOT_URLCONF = "tests.wagtail.urls"
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": f"{PUBLIC}/hooks/"}


def library_image(color: tuple[int, int, int] = (30, 120, 200), title: str = "Harbour") -> Any:
    out = io.BytesIO()
    PILImage.new("RGB", (80, 60), color).save(out, "PNG")
    image = get_image_model()(title=title, file=ContentFile(out.getvalue(), name="harbour.png"))
    image.save()
    return image


def waiting_job(url: str, status: str = Status.SUBMITTED, **fields: Any) -> Any:
    return make_job(status=status, mode=Mode.IMAGE_TO_IMAGE, reference_urls=[url], **fields)


def path_of(url: str) -> str:
    return url[len(PUBLIC) :]


def pixel(body: bytes) -> tuple[int, ...]:
    return PILImage.open(io.BytesIO(body)).convert("RGB").getpixel((5, 5))


# The URL -------------------------------------------------------------------------


def test_reference_url_is_signed_on_the_public_origin(public_urls):
    image = library_image()
    url = references.reference_url(image)
    # CALLBACK_BASE_URL's origin, not its path.
    assert url.startswith(f"{PUBLIC}/imagegen/wagtail/references/")
    assert references.image_id_for(url.rstrip("/").rsplit("/", 1)[-1]) == image.pk


@pytest.mark.parametrize(
    ("callback", "admin_base", "expected"),
    [
        ("https://cms.example.org/hooks/", "https://admin.example.org", "https://cms.example.org"),
        (None, "https://admin.example.org/", "https://admin.example.org"),
        ("", "http://admin.example.org:8080/cms", "http://admin.example.org:8080"),
        (None, "", None),
        ("ftp://cms.example.org", "", None),
        ("not a url", None, None),
    ],
)
def test_public_base(settings, callback, admin_base, expected):
    """The family of configurations: CALLBACK_BASE_URL first, WAGTAILADMIN_BASE_URL
    next, each only as an http(s) origin; neither → a clear error."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": callback}
    settings.WAGTAILADMIN_BASE_URL = admin_base
    if expected is None:
        with pytest.raises(references.ReferenceBaseError, match="CALLBACK_BASE_URL"):
            references.public_base()
    else:
        assert references.public_base() == expected


# Valid ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.QUEUED, Status.SUBMITTED, Status.RUNNING])
def test_a_waiting_job_s_reference_is_served_without_login(client, public_urls, status):
    image = library_image(color=(30, 120, 200))
    library_image(color=(250, 250, 0), title="Other")
    url = references.reference_url(image)
    waiting_job(url, status=status)

    response = client.get(path_of(url))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    # The named image's pixels, not another's.
    assert pixel(body) == (30, 120, 200)

    head = client.head(path_of(url))
    assert head.status_code == 200 and head["Content-Type"] == "image/png"
    assert b"".join(head.streaming_content) == b""


# Expired ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "job_fields",
    [
        {"deadline_at": timezone.now() - timedelta(seconds=1)},
        {"status": Status.FINALIZING},
        {"status": Status.SUCCEEDED},
        {"status": Status.FAILED},
        {"status": Status.CANCELED},
        {"status": Status.EXPIRED},
    ],
    ids=["past-deadline", "finalizing", "succeeded", "failed", "canceled", "expired"],
)
def test_a_reference_no_job_waits_for_is_gone(client, public_urls, job_fields):
    image = library_image()
    url = references.reference_url(image)
    waiting_job(url, **job_fields)
    response = client.get(path_of(url))
    assert response.status_code == 404
    assert b"Harbour" not in response.content


def test_a_retry_brings_the_reference_back_for_its_own_lifetime(client, public_urls):
    """A retry sends the same URL (services.retry copies the settings): it is
    served again while the retry waits, whatever the token's age."""
    url = references.reference_url(library_image())
    waiting_job(url, status=Status.FAILED)
    assert client.get(path_of(url)).status_code == 404
    waiting_job(url, status=Status.QUEUED)
    assert client.get(path_of(url)).status_code == 200


# Tampered, other image, wrong kind -----------------------------------------------------


def _flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("A" if char != "A" else "B") + text[index + 1 :]


def _split(url: str) -> tuple[str, str]:
    """A reference URL as (everything before the token, the token)."""
    prefix, token, _ = url.rsplit("/", 2)
    return f"{prefix}/", token


def _tampered(token: str) -> dict[str, str]:
    payload, timestamp, signature = token.split(":")
    return {
        "payload-char": _flip(token, 3),
        "signature-char": f"{payload}:{timestamp}:{_flip(signature, 5)}",
        "timestamp": f"{payload}:{_flip(timestamp, 0)}:{signature}",
        "no-signature": f"{payload}:{timestamp}",
        "payload-only": payload,
        "garbage": "not-a-token",
    }


@pytest.mark.parametrize(
    "variant",
    ["payload-char", "signature-char", "timestamp", "no-signature", "payload-only", "garbage"],
)
def test_a_tampered_token_is_refused(client, public_urls, variant):
    prefix, token = _split(references.reference_url(library_image()))
    forged = _tampered(token)[variant]
    # Even when a waiting job sends the forged URL itself.
    waiting_job(f"{prefix}{forged}/")
    response = client.get(path_of(f"{prefix}{forged}/"))
    assert response.status_code == 404


def test_a_token_for_another_image_is_refused(client, public_urls):
    sent, other = library_image(), library_image(color=(250, 250, 0), title="Other")
    # One URL per image: a token carries its signing second, so a second
    # call may name the same image with another token.
    sent_url = references.reference_url(sent)
    waiting_job(sent_url)
    assert client.get(path_of(references.reference_url(other))).status_code == 404
    assert client.get(path_of(sent_url)).status_code == 200


def _wrong_kind(image: Any) -> dict[str, str]:
    return {
        "other-salt": signing.dumps({"kind": references.KIND, "image": image.pk}, salt="other"),
        "no-salt": signing.dumps({"kind": references.KIND, "image": image.pk}),
        "other-kind": signing.dumps({"kind": "document", "image": image.pk}, salt=references.SALT),
        "string-id": signing.dumps(
            {"kind": references.KIND, "image": str(image.pk)}, salt=references.SALT
        ),
        "bool-id": signing.dumps({"kind": references.KIND, "image": True}, salt=references.SALT),
        "list-payload": signing.dumps([references.KIND, image.pk], salt=references.SALT),
        "callback-token": tokens.callback_token(make_job().pk),
        "wagtail-serve": generate_signature(image.pk, "original"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "other-salt",
        "no-salt",
        "other-kind",
        "string-id",
        "bool-id",
        "list-payload",
        "callback-token",
        "wagtail-serve",
    ],
)
def test_a_token_of_another_kind_is_refused(client, public_urls, kind):
    image = library_image()
    token = _wrong_kind(image)[kind]
    prefix, _ = _split(references.reference_url(image))
    url = f"{prefix}{token}/"
    waiting_job(url)
    assert references.image_id_for(token) is None
    assert client.get(path_of(url)).status_code == 404


@pytest.mark.parametrize(
    ("method", "status"),
    [("get", 200), ("head", 200), ("post", 405), ("put", 405), ("patch", 405), ("delete", 405)],
)
def test_methods(client, public_urls, method, status):
    url = references.reference_url(library_image())
    waiting_job(url)
    assert getattr(client, method)(path_of(url)).status_code == status


def test_an_svg_is_never_served(client, public_urls):
    svg = get_image_model()(
        title="Logo",
        file=ContentFile(b'<svg xmlns="http://www.w3.org/2000/svg"/>', name="logo.svg"),
        width=10,
        height=10,
    )
    svg.save()
    url = references.reference_url(svg)
    waiting_job(url)
    assert client.get(path_of(url)).status_code == 404


# End to end: a provider that fetches references -----------------------------------


@pytest.fixture
def openai_sandbox() -> Any:
    with SandboxServer(config=SandboxConfig(latency=(0.0, 0.05), api_key="sk-test-key")) as server:
        yield server


@pytest.mark.django_db(transaction=True)
def test_the_worker_fetches_the_signed_url_and_the_provider_gets_the_image(
    live_server, settings, openai_sandbox
):
    """OpenAI's provider downloads each reference in imagegen's worker and
    uploads it: the signed URL, fetched over HTTP from the live server, gives
    the sandbox a real image (it checks each part's bytes against its type);
    once the job no longer waits, the same fetch is refused."""
    settings.ROOT_URLCONF = "tests.wagtail.urls"
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": live_server.url}
    image = library_image()
    url = references.reference_url(image)
    job = waiting_job(url, status=Status.QUEUED)
    provider = OpenAIImagesProvider(
        "openai",
        {
            "API_KEY": "sk-test-key",
            "BASE_URL": f"{openai_sandbox.url}/v1",
            "MODEL": "gpt-image-1",
            # The live server is on loopback; a real site is public.
            "ALLOW_PRIVATE_HOSTS": True,
        },
    )
    request = GenerationRequest(Mode.IMAGE_TO_IMAGE, "make it blue", "1k", "1:1", image_urls=(url,))
    [output] = provider.submit(request).result.outputs
    assert output.data
    stats = openai_sandbox.stats()
    assert (stats["openai_edits"], stats["openai_edit_images"]) == (1, 1)

    job.status = Status.SUCCEEDED
    job.save(update_fields=["status"])
    assert httpx.get(url).status_code == 404


# The form's picker --------------------------------------------------------------------


def form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "prompt": "The same harbour at dawn",
        "mode": "image-to-image",
        "resolution": "1k",
        "aspect_ratio": "auto",
        "reference_urls": "",
        "provider": "sandbox",
        "collection": Collection.get_first_root_node().pk,
        "idempotency_key": "wagtail:refs",
    }
    data.update(overrides)
    return data


def test_picking_a_library_image_sends_its_signed_url(public_urls, wagtail_editor):
    image = library_image()
    form = WagtailGenerateForm(
        form_data(reference_images=[f"image:{image.pk}"], reference_urls="https://x.example/a.png"),
        user=wagtail_editor,
    )
    assert form.is_valid(), form.errors
    arguments = form.job_arguments()
    [signed, typed] = arguments["reference_urls"]
    assert references.image_id_for(signed.rstrip("/").rsplit("/", 1)[-1]) == image.pk
    assert typed == "https://x.example/a.png"
    assert arguments["reference_images"] == []


def test_the_picker_offers_library_images_and_results(public_urls, wagtail_editor):
    image = library_image()
    result = make_image(make_job(wagtail_editor))
    form = WagtailGenerateForm(user=wagtail_editor)
    values = [item["value"] for item in form.fields["reference_images"].widget.items]
    assert values == [f"image:{image.pk}", f"result:{result.pk}"]
    picked = WagtailGenerateForm(
        form_data(reference_images=[f"result:{result.pk}"]), user=wagtail_editor
    )
    assert picked.is_valid(), picked.errors
    assert picked.job_arguments()["reference_images"] == [result]


@pytest.mark.parametrize(
    "value",
    ["image:{hidden}", "result:{theirs}", "image:999999", "image:x", "other:{image}", "{image}"],
)
def test_the_picker_refuses_what_the_editor_may_not_use(public_urls, django_user_model, value):
    """The family: a library image in a collection the editor may not choose
    from, another user's result, an unknown id, a malformed id, an unknown
    kind, a bare id. Nothing is offered or accepted beyond what they may use."""
    root = Collection.get_first_root_node()
    mine = root.add_child(instance=Collection(name="Mine"))
    private = root.add_child(instance=Collection(name="Private"))
    editor = make_wagtail_user(django_user_model, "picker", images=())
    grant_images(editor, "add", "choose", collection=mine)
    image, hidden = library_image(), library_image(title="Hidden")
    get_image_model().objects.filter(pk=image.pk).update(collection=mine)
    get_image_model().objects.filter(pk=hidden.pk).update(collection=private)
    theirs = make_image(make_job(make_wagtail_user(django_user_model, "other")))
    data = form_data(
        collection=mine.pk,
        reference_images=[value.format(hidden=hidden.pk, theirs=theirs.pk, image=image.pk)],
    )
    form = WagtailGenerateForm(data, user=editor)
    offered = [item["value"] for item in form.fields["reference_images"].widget.items]
    assert offered == [f"image:{image.pk}"]
    assert not form.is_valid()
    assert "reference_images" in form.errors


def test_without_a_public_address_the_picker_says_why(settings, wagtail_editor):
    settings.ROOT_URLCONF = "tests.wagtail.urls"
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": None}
    settings.WAGTAILADMIN_BASE_URL = ""
    image = library_image()
    form = WagtailGenerateForm(
        form_data(reference_images=[f"image:{image.pk}"]), user=wagtail_editor
    )
    assert not form.is_valid()
    assert "CALLBACK_BASE_URL" in form.errors["reference_images"][0]


def test_generate_again_picks_the_library_images_again(public_urls):
    image = library_image()
    signed = references.reference_url(image)
    picks, urls = initial_references([signed, "https://x.example/a.png"], [])
    assert picks == [f"image:{image.pk}"]
    assert urls == ["https://x.example/a.png"]
