"""Storing results on S3 through django-storages, against moto's server."""

from __future__ import annotations

import hashlib
import tempfile

import pytest

from imagegen import services
from imagegen.choices import Status
from imagegen.models import GeneratedImage
from imagegen.storage import get_storage, save_file

from .conftest import S3_BUCKET
from .test_services import run_to_end

pytestmark = [pytest.mark.services, pytest.mark.django_db]

boto3 = pytest.importorskip("boto3", reason="the s3 extra is not installed")


def test_result_is_stored_on_s3_with_bytes_and_type(imagegen_settings, s3_storage, sandbox):
    job = run_to_end(services.create_job(prompt="an S3 bucket of paint [sandbox:format=jpeg]"))
    assert job.status == Status.SUCCEEDED, job.error_message
    image = GeneratedImage.objects.get(job=job)
    key = f"imagegen/{job.created_at:%Y/%m}/{job.pk}/0.jpg"
    assert image.file.name == key
    head = s3_storage.head_object(Bucket=S3_BUCKET, Key=key)
    assert head["ContentType"] == "image/jpeg"
    body = s3_storage.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == image.sha256
    assert len(body) == image.size


def test_repeated_store_overwrites_the_same_key(imagegen_settings, s3_storage, sandbox):
    job = run_to_end(services.create_job(prompt="overwrite"))
    image = GeneratedImage.objects.get(job=job)
    local = get_storage().open(image.file.name).read()

    with tempfile.NamedTemporaryFile(suffix=".png") as fh:
        fh.write(local)
        fh.flush()
        assert save_file(image.file.name, fh.name, "image/png") == image.file.name
    keys = [o["Key"] for o in s3_storage.list_objects_v2(Bucket=S3_BUCKET)["Contents"]]
    assert keys == [image.file.name]
