"""Storage (S3 on moto's server) failing or hanging while results are stored:
finalize retries, and no half-written object or asset is ever left."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from imagegen import services
from imagegen.choices import Status
from imagegen.models import GeneratedImage

from ..conftest import wait_until
from .conftest import drive_to_end, job_row
from .proxy import TCPProxy
from .s3_behind_proxy import s3_behind_proxy

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

pytest.importorskip("boto3", reason="the s3 extra is not installed")

BUCKET = "imagegen-faults"


@pytest.fixture
def s3(
    fault_settings: dict[str, Any], settings: Any, moto_endpoint: str, aws_credentials: None
) -> Iterator[tuple[Any, TCPProxy]]:
    """Results go to a bucket on moto's server, reached (by everyone) through a proxy."""
    with s3_behind_proxy(settings, moto_endpoint, BUCKET) as s3:
        yield s3


def stored_keys(client: Any, job: Any) -> set[str]:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix="imagegen/").get("Contents", [])
    return {obj["Key"] for obj in listing if str(job.pk) in obj["Key"]}


def assert_stored_once_on_s3(client: Any, job: Any) -> None:
    assert job.status == Status.SUCCEEDED, (job.status, job.error_code, job.error_message)
    images = list(job.images.order_by("index"))
    assert [image.index for image in images] == list(range(len(job.result_urls)))
    keys = stored_keys(client, job)
    outputs = {image.file.name for image in images}
    assert outputs <= keys
    assert not {k for k in keys - outputs if ".thumb." not in k}, "orphan objects"
    for image in images:
        head = client.head_object(Bucket=BUCKET, Key=image.file.name)
        assert head["ContentLength"] == image.size


def test_storage_down_for_a_while_finalize_retries(
    s3: tuple[Any, TCPProxy], sandbox: Any, workers: Any
) -> None:
    client, proxy = s3
    proxy.cut()
    job = services.create_job(prompt="A kestrel hovering [sandbox:count=2]")
    workers()
    wait_until(
        lambda: job_row(job.pk).finalize_attempts >= 2,
        timeout=45,
        what="finalize to fail on storage and try again",
    )
    # Nothing half-done while storage is away: no asset, no object.
    assert job_row(job.pk).status == Status.FINALIZING
    assert not GeneratedImage.objects.filter(job=job).exists()
    assert not stored_keys(client, job)
    proxy.restore()

    job = drive_to_end(job.pk)

    assert_stored_once_on_s3(client, job)
    assert sandbox.stats()["submits"] == 1


def test_worker_killed_while_storage_hangs(
    s3: tuple[Any, TCPProxy], sandbox: Any, workers: Any
) -> None:
    client, proxy = s3
    proxy.stall()
    job = services.create_job(prompt="A swift in flight")
    first = workers()
    wait_until(
        lambda: job_row(job.pk).status == Status.FINALIZING and sandbox.stats()["downloads"] >= 1,
        what="finalize to reach storage",
    )
    first.kill()
    proxy.restore()
    workers()

    job = drive_to_end(job.pk)

    assert_stored_once_on_s3(client, job)
    assert job.finalize_attempts >= 2


def test_worker_killed_mid_upload(s3: tuple[Any, TCPProxy], sandbox: Any, workers: Any) -> None:
    client, proxy = s3
    # Each connection to S3 may send 3 kB: the existence check gets through,
    # the upload stops a few hundred bytes into the image.
    proxy.choke(after_bytes=3000)
    job = services.create_job(prompt="A nightjar [sandbox:noise]")
    first = workers()
    wait_until(proxy.choked.is_set, what="an upload to stop half way")
    assert proxy.choked_request.startswith(b"PUT /imagegen-faults/imagegen/")
    first.kill()
    assert not stored_keys(client, job)  # S3 never shows a half-written object
    proxy.restore()
    workers()

    job = drive_to_end(job.pk)

    assert_stored_once_on_s3(client, job)
    assert job.finalize_attempts >= 2
