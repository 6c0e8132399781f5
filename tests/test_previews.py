"""Previews made on first view (``imagegen:image-preview``): made once under
concurrent first views, reused after, made again when their file is gone,
for every accepted format, size and orientation on each engine, behind the
image's permissions. Storage failing during a view is
``tests/faults/test_previews.py``."""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from PIL import Image

from imagegen import previews, tasks
from imagegen.admin import display
from imagegen.models import GeneratedImage, GenerationJob
from imagegen.services.thumbnails import thumbnail_name
from imagegen.storage import get_storage, output_name

from .conftest import require_postgres, unavailable, wait_until
from .factories import make_editor, make_image, make_job, make_user

VIEW = "imagegen.view_generatedimage"


def url(image: GeneratedImage) -> str:
    return reverse("imagegen:image-preview", args=[image.pk])


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the images rendered (the real engine runs; calls are counted)."""
    calls: list[str] = []
    real = previews.render

    def counted(open_source: Callable[[], Any], *, path: str | None = None) -> bytes:
        calls.append(path or "stream")
        return real(open_source, path=path)

    monkeypatch.setattr(previews, "render", counted)
    return calls


@pytest.fixture
def owner(django_user_model: Any) -> Any:
    return make_user(django_user_model, VIEW)


def viewer(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def webp_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "WEBP"
        return im.size


# Made once, reused, made again ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("viewers", [2, 5])
def test_concurrent_first_views_make_one_preview(
    viewers: int, owner: Any, renders: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Family: 2 and 5 first views of the same image at once (threads, each
    its own database connection). The first to lock renders while every
    other one is seen waiting on its lock; exactly one render, every view
    answers 200 with the same bytes, and the row points at the one file."""
    require_postgres("row locks waited on by concurrent requests")
    image = make_image(make_job(owner), size=(1024, 576))
    real = previews.render

    def render_once_all_wait(*args: Any, **kwargs: Any) -> bytes:
        wait_until(lambda: _lock_waiters() >= viewers - 1, what="the other viewers to wait")
        return real(*args, **kwargs)

    monkeypatch.setattr(previews, "render", render_once_all_wait)
    answers: list[Any] = []
    start = threading.Barrier(viewers)

    def view() -> None:
        try:
            client = viewer(owner)
            start.wait()
            answers.append(client.get(url(image)))
        finally:
            connection.close()

    threads = [threading.Thread(target=view) for _ in range(viewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(renders) == 1
    assert [answer.status_code for answer in answers] == [200] * viewers
    assert len({answer.content for answer in answers}) == 1
    image.refresh_from_db()
    assert image.thumbnail.name == thumbnail_name(image.file.name)
    assert get_storage().open(image.thumbnail.name).read() == answers[0].content


def _lock_waiters() -> int:
    """Sessions of this database waiting on a lock (another connection: the
    caller's may be inside the locking transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_view_while_another_makes_it_gets_the_original(
    owner: Any, renders: list[str], settings: Any
) -> None:
    """While another request holds the image's lock for longer than
    PREVIEW_WAIT, a view is redirected to the original (not cached) and
    renders nothing; once the lock is free, the next view makes it."""
    require_postgres("a row lock held by another connection")
    settings.IMAGEGEN = {**settings.IMAGEGEN, "PREVIEW_WAIT": 0.2}
    image = make_image(make_job(owner))
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                GeneratedImage.objects.select_for_update().get(pk=image.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30)
        meanwhile = viewer(owner).get(url(image))
    finally:
        release.set()
        holder.join(30)

    assert meanwhile.status_code == 302
    assert meanwhile["Location"] == image.file.url
    assert "no-cache" in meanwhile["Cache-Control"]
    assert renders == []
    assert viewer(owner).get(url(image)).status_code == 200
    assert len(renders) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("later", ["same browser, ETag", "another request, no ETag"])
def test_later_views_reuse_the_stored_preview(later: str, owner: Any, renders: list[str]) -> None:
    """Family: a later view from a browser that has it (If-None-Match: 304,
    nothing read) and one that has not (200, the stored bytes). Neither
    renders again; both answer private caching headers."""
    image = make_image(make_job(owner), size=(800, 600))
    client = viewer(owner)
    first = client.get(url(image))
    assert first.status_code == 200
    headers = {"If-None-Match": first["ETag"]} if later == "same browser, ETag" else {}

    again = client.get(url(image), headers=headers)

    assert len(renders) == 1
    assert again.status_code == (304 if headers else 200)
    assert again["ETag"] == first["ETag"]
    assert "private" in again["Cache-Control"] and "max-age=86400" in again["Cache-Control"]
    if not headers:
        assert again.content == first.content


@pytest.mark.django_db
@pytest.mark.parametrize("before", ["made on view", "stored by an earlier version"])
def test_a_deleted_preview_file_is_made_again(before: str, owner: Any, renders: list[str]) -> None:
    """Family: a preview made by a view, and one an earlier version stored
    (its row's ``thumbnail`` set, served as is while its file exists). Its
    file deleted from storage, the next view makes it again under the same
    name and the row still points at it."""
    image = make_image(make_job(owner), size=(800, 600))
    name = thumbnail_name(image.file.name)
    client = viewer(owner)
    if before == "made on view":
        assert client.get(url(image)).status_code == 200
    else:
        old = get_storage().save(name, ContentFile(b"RIFF an earlier preview"))
        GeneratedImage.objects.filter(pk=image.pk).update(thumbnail=old)
        served = client.get(url(image))
        assert served.content == b"RIFF an earlier preview"
    made = len(renders)
    get_storage().delete(name)

    again = client.get(url(image))

    assert again.status_code == 200
    assert webp_size(again.content) == (400, 300)
    assert len(renders) == made + 1
    image.refresh_from_db()
    assert image.thumbnail.name == name
    assert get_storage().open(name).read() == again.content


# Formats, sizes, orientations, engines ---------------------------------------------

SIZES = {"1k": 1024, "2k": 2048, "4k": 4096}
FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}


@pytest.fixture(params=["pillow", "vips"])
def engine(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each engine: libvips is optional (the ``vips`` extra and the system
    library), so its member runs only where it is installed."""
    if request.param == "vips" and previews.vips() is None:
        unavailable("libvips is not installed (pyvips and libvips42): the Pillow engine is tested")
    if request.param == "pillow":
        monkeypatch.setattr(previews, "vips", lambda: None)
    return request.param


def stored_image(job: GenerationJob, fmt: str, size: tuple[int, int], mode: str) -> GeneratedImage:
    """A stored result of ``job`` in ``fmt`` (:func:`encoded`)."""
    data = encoded(fmt, size, mode)
    extension, content_type = FORMATS[fmt]
    name = get_storage().save(output_name(job, 0, extension), ContentFile(data))
    return GeneratedImage.objects.create(
        job=job,
        index=0,
        file=name,
        width=size[0],
        height=size[1],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=content_type,
        prompt=job.prompt,
        provider=job.provider,
        model=job.model,
    )


@functools.cache
def encoded(fmt: str, size: tuple[int, int], mode: str) -> bytes:
    """A gradient (fast to encode at 4K) with a red mark in the top-left
    corner, so that a rotated or flipped preview shows; the same bytes for
    each engine."""
    gradient = Image.linear_gradient("L").resize(size)
    across = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(size)
    im = Image.merge("RGB", (gradient, across, gradient))
    im.paste((255, 0, 0), (0, 0, size[0] // 4, size[1] // 4))
    if mode == "RGBA":
        im.putalpha(gradient)
    elif mode == "L":
        im = im.convert("L")
    out = io.BytesIO()
    options = {"PNG": {"compress_level": 1}, "WEBP": {"method": 0}}.get(fmt, {})
    im.save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("resolution", list(SIZES))
@pytest.mark.parametrize("orientation", ["landscape", "portrait"])
def test_each_format_size_and_orientation(
    fmt: str, resolution: str, orientation: str, engine: str, owner: Any
) -> None:
    """Family: PNG, JPEG and WebP; 1K, 2K and 4K; landscape (16:9) and
    portrait (9:16); on each engine. The preview is a WebP whose longer
    side is 400 px, with the original's proportions (to a pixel), and its
    top-left corner is the original's (not rotated or flipped)."""
    long = SIZES[resolution]
    size = (long, long * 9 // 16)
    if orientation == "portrait":
        size = size[::-1]
    image = stored_image(make_job(owner), fmt, size, "RGB")

    answer = viewer(owner).get(url(image))

    assert answer.status_code == 200 and answer["Content-Type"] == "image/webp"
    width, height = webp_size(answer.content)
    assert max(width, height) == previews.PREVIEW_SIZE
    assert abs(width / height - size[0] / size[1]) < 2 / min(width, height)
    with Image.open(io.BytesIO(answer.content)) as im:
        red, green, blue = im.convert("RGB").getpixel((3, 3))
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_each_pixel_mode(mode: str, engine: str, owner: Any) -> None:
    """Family: colour, colour with alpha and greyscale PNGs, on each engine:
    a WebP preview every time, alpha kept where there was one."""
    image = stored_image(make_job(owner), "PNG", (1024, 576), mode)

    answer = viewer(owner).get(url(image))

    assert answer.status_code == 200
    with Image.open(io.BytesIO(answer.content)) as im:
        assert im.size == (400, 225)
        assert ("A" in im.getbands()) == (mode == "RGBA")


@pytest.mark.django_db
@pytest.mark.parametrize("size", [(64, 48), (48, 64), (400, 300), (401, 10)])
def test_small_images_are_not_enlarged(size: tuple[int, int], engine: str, owner: Any) -> None:
    """Family: images smaller than the preview box both ways, exactly at
    it, and over it by one pixel one way only, on each engine: a preview is
    never larger than its image, and at most 400 px a side."""
    image = stored_image(make_job(owner), "PNG", size, "RGB")

    answer = viewer(owner).get(url(image))

    width, height = webp_size(answer.content)
    assert width <= size[0] and height <= size[1]
    assert max(width, height) == min(max(size), previews.PREVIEW_SIZE)


@pytest.mark.django_db
@pytest.mark.parametrize("stored", ["with its file", "discarded (no file)"])
def test_admin_pages_show_the_preview_url(stored: str, owner: Any) -> None:
    """Family: an image with its file, a discarded one. The admin's
    thumbnail points at the stable preview URL (never at the full image),
    and a discarded image shows none."""
    image = make_image(make_job(owner), **({"file": ""} if stored != "with its file" else {}))

    html = display.thumbnail(image, size=96)

    if image.file:
        assert f'src="{url(image)}"' in html
    else:
        assert html == "" and image.preview_url == ""


# Permissions, missing files -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 200),
        ("owner with change permission only", 200),
        ("other user", 403),
        ("other user with view_all_jobs", 200),
        ("user without the view permission", 403),
        ("anonymous", 401),
    ],
)
def test_who_may_see_a_preview(
    who: str, status: int, django_user_model: Any, renders: list[str]
) -> None:
    """Family: the image's owner (view or change permission), another user
    without and with ``view_all_jobs``, a user without the view permission,
    an anonymous request. Those refused get no preview made."""
    perms = {
        "owner with change permission only": ("imagegen.change_generatedimage",),
        "other user with view_all_jobs": (VIEW, "imagegen.view_all_jobs"),
        "user without the view permission": (),
    }.get(who, (VIEW,))
    user = make_user(django_user_model, *perms)
    owner = user if who.startswith("owner") else make_editor(django_user_model)
    image = make_image(make_job(owner))
    client = Client() if who == "anonymous" else viewer(user)

    answer = client.get(url(image))

    assert answer.status_code == status
    assert len(renders) == (1 if status == 200 else 0)


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["file gone from storage", "discarded (no file)", "no such image"])
def test_a_preview_without_an_original_answers_404(
    case: str, owner: Any, renders: list[str]
) -> None:
    """Family: the image's file deleted from storage, an image discarded
    (its row keeps no file), an id no image has. 404 with a reason, not
    500; nothing is written and the row points at no preview."""
    image = make_image(make_job(owner))
    target = url(image)
    if case == "file gone from storage":
        get_storage().delete(image.file.name)
    elif case == "discarded (no file)":
        GeneratedImage.objects.filter(pk=image.pk).update(file="")
    else:
        target = reverse("imagegen:image-preview", args=[image.pk + 1000])

    answer = viewer(owner).get(target)

    assert answer.status_code == 404
    assert answer.content
    assert not get_storage().exists(thumbnail_name(image.file.name))
    image.refresh_from_db()
    assert not image.thumbnail


# Upgrades -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_preview_task_queued_before_the_upgrade_succeeds(renders: list[str]) -> None:
    """A ``imagegen.make_thumbnails`` message sent by the earlier version
    is consumed without error and makes nothing (previews are made on view)."""
    job = make_job(images=1)

    result = tasks.make_thumbnails.apply(args=[str(job.pk)])

    assert result.successful() and result.result == 0
    assert renders == []
    assert not job.images.get().thumbnail
