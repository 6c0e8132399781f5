"""Previews made on first view while the storage (S3 on moto's server,
reached through a proxy that can be cut) fails: the view answers 503 with
``Retry-After``, no half-written preview is stored or recorded, and the
first view after the storage is back makes it."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from imagegen import previews
from imagegen.models import GeneratedImage
from imagegen.services.thumbnails import thumbnail_name

from ..factories import make_image, make_job, make_user
from .proxy import TCPProxy
from .s3_behind_proxy import s3_behind_proxy

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

pytest.importorskip("boto3", reason="the s3 extra is not installed")
botocore_config = pytest.importorskip("botocore.config", reason="the s3 extra is not installed")

BUCKET = "imagegen-previews"


@pytest.fixture
def s3(settings: Any, moto_endpoint: str, aws_credentials: None) -> Iterator[tuple[Any, TCPProxy]]:
    """imagegen's storage on moto's S3, reached through a proxy; a failed
    call gives up within seconds (no retries), as a web request must."""
    config = botocore_config.Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1})
    with s3_behind_proxy(settings, moto_endpoint, BUCKET, client_config=config) as s3:
        yield s3


def keys(client: Any) -> set[str]:
    return {obj["Key"] for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


FAULTS: dict[str, Callable[[TCPProxy], None]] = {
    # The storage is gone before the view: the original cannot be read.
    "down before the view": lambda proxy: proxy.cut(),
    # The preview is rendered, then the storage goes: the write is refused.
    "down before the write": lambda proxy: proxy.cut(),
    # The write starts and stops half way (the rest of the body never sent).
    "write stopped half way": lambda proxy: _choke_anew(proxy, 4000),
}


def _choke_anew(proxy: TCPProxy, after_bytes: int) -> None:
    """Choke the next connection: the client's kept-alive one is dropped
    first (a choke holds new connections only)."""
    proxy.cut()
    proxy.restore()
    proxy.choke(after_bytes)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_storage_failing_during_a_first_view(
    fault: str,
    s3: tuple[Any, TCPProxy],
    django_user_model: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Family: the storage down before the view, down between rendering and
    writing, and a write that stops half way. Each answers 503 with
    Retry-After and a reason; nothing is stored under the preview's name and
    the row points at no preview. With the storage back, the next view
    answers the preview, stored once and recorded."""
    client, proxy = s3
    owner = make_user(django_user_model, "imagegen.view_generatedimage")
    image = make_image(make_job(owner), size=(1024, 576))
    # Noise: a preview of tens of kB, so that a write stopped after 4 kB
    # stops inside its body.
    noisy = io.BytesIO()
    Image.effect_noise((1024, 576), 80).save(noisy, "PNG")
    client.put_object(Bucket=BUCKET, Key=image.file.name, Body=noisy.getvalue())
    name = thumbnail_name(image.file.name)
    browser = Client()
    browser.force_login(owner)
    if fault == "down before the view":
        FAULTS[fault](proxy)
    else:
        real = previews.render

        def then_fail(*args: Any, **kwargs: Any) -> bytes:
            data = real(*args, **kwargs)
            FAULTS[fault](proxy)
            return data

        monkeypatch.setattr(previews, "render", then_fail)

    answer = browser.get(reverse("imagegen:image-preview", args=[image.pk]))

    assert answer.status_code == 503
    assert answer["Retry-After"]
    assert b"storage" in answer.content
    if fault == "write stopped half way":
        assert proxy.choked.is_set() and proxy.choked_request.startswith(b"PUT ")
    proxy.restore()
    monkeypatch.undo()
    assert name not in keys(client)
    image.refresh_from_db()
    assert not image.thumbnail

    again = browser.get(reverse("imagegen:image-preview", args=[image.pk]))

    assert again.status_code == 200
    assert keys(client) == {image.file.name, name}
    image.refresh_from_db()
    assert image.thumbnail.name == name
    assert client.get_object(Bucket=BUCKET, Key=name)["Body"].read() == again.content


def test_a_stored_preview_unreadable_answers_503_and_stays(
    s3: tuple[Any, TCPProxy], django_user_model: Any
) -> None:
    """A preview already stored and recorded, the storage down: 503, and
    the row still points at it (a read error is not a missing file, so it
    is not made again); with the storage back it is served as stored."""
    _client, proxy = s3
    owner = make_user(django_user_model, "imagegen.view_generatedimage")
    image = make_image(make_job(owner))
    browser = Client()
    browser.force_login(owner)
    url = reverse("imagegen:image-preview", args=[image.pk])
    stored = browser.get(url).content
    proxy.cut()

    answer = browser.get(url)

    assert answer.status_code == 503
    proxy.restore()
    assert GeneratedImage.objects.get(pk=image.pk).thumbnail.name == thumbnail_name(image.file.name)
    assert browser.get(url).content == stored


def test_an_original_missing_from_s3_answers_404(
    s3: tuple[Any, TCPProxy], django_user_model: Any
) -> None:
    """On a remote storage (streamed to the engine), an image whose object
    was deleted answers 404 with a reason, not 503 or 500, and stores nothing."""
    client, _proxy = s3
    owner = make_user(django_user_model, "imagegen.view_generatedimage")
    image = make_image(make_job(owner))
    client.delete_object(Bucket=BUCKET, Key=image.file.name)
    browser = Client()
    browser.force_login(owner)

    answer = browser.get(reverse("imagegen:image-preview", args=[image.pk]))

    assert answer.status_code == 404
    assert b"missing" in answer.content
    assert keys(client) == set()
