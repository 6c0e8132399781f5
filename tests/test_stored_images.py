"""What is stored from a result file, end to end over real HTTP to the sandbox.

Family: a JPEG and a PNG with a zip archive after the image (polyglots): the
job succeeds and the stored file ends where the image does (the JPEG at its
EOI, the PNG at IEND), with the same pixels and no archive; an animated PNG
and an animated WebP: the job fails (``BAD_RESULT``) and nothing is stored.
"""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
from PIL import Image

from imagegen.choices import Status
from imagegen.models import GeneratedImage
from imagegen.storage import get_storage

from .test_services import create, run_to_end

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


@pytest.mark.parametrize(("fmt", "end"), [("jpeg", b"\xff\xd9"), ("png", b"IEND\xaeB`\x82")])
def test_polyglot_is_stored_without_what_follows_the_image(imagegen_settings, fmt, end):
    job = run_to_end(create(f"x [sandbox:format={fmt}] [sandbox:download=polyglot]"))
    assert job.status == Status.SUCCEEDED, job.error_message
    served = httpx.get(job.result_urls[0]).content
    assert zipfile.is_zipfile(io.BytesIO(served))
    image = GeneratedImage.objects.get(job=job)
    stored = get_storage().open(image.file.name).read()
    assert stored.endswith(end)
    assert not zipfile.is_zipfile(io.BytesIO(stored))
    assert b"payload.txt" not in stored
    assert pixels(stored) == pixels(served)
    assert image.size == len(stored)


@pytest.mark.parametrize("kind", ["apng", "awebp"])
def test_animated_result_fails_the_job_and_stores_nothing(imagegen_settings, kind):
    job = run_to_end(create(f"x [sandbox:download={kind}]"))
    assert job.status == Status.FAILED
    assert job.error_code == "BAD_RESULT"
    assert "Animated" in job.error_message
    assert not GeneratedImage.objects.filter(job=job).exists()
