"""Content Credentials (C2PA): what finalize stores, read back with ``c2pa.Reader``.

The sandbox signs its results with its test identity (``[sandbox:credentials]``), as
GPT Image's results carry OpenAI's manifest; imagegen signs with a test
identity made here. Both roots are configured as trusted
(``C2PA_TRUST_ANCHORS``), so a validated chain reads ``trusted``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import struct

import c2pa
import httpx
import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from PIL import Image

from imagegen import credentials, provenance, services
from imagegen.c2pa_identity import make_identity
from imagegen.choices import Status
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.sandbox import render
from imagegen.storage import get_storage

from .test_services import run_to_end

pytestmark = [pytest.mark.services, pytest.mark.django_db]

FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    """imagegen's test signing identity, written to files as a site would keep it."""
    test_identity = make_identity("es256")
    return test_identity, test_identity.write(tmp_path_factory.mktemp("identity"))


@pytest.fixture
def trusted(imagegen_settings, settings, identity):
    """IMAGEGEN trusting the sandbox's root and the test identity's root, not signing."""
    anchors = (render.IDENTITY / "root.pem").read_text() + identity[0].root
    settings.IMAGEGEN = {**imagegen_settings, "C2PA_TRUST_ANCHORS": anchors}
    return settings.IMAGEGEN


@pytest.fixture
def signing(trusted, settings, identity):
    """As ``trusted``, and signing with the test identity (paths of its files)."""
    paths = identity[1]
    settings.IMAGEGEN = {
        **trusted,
        "C2PA_SIGNING_CERTIFICATES": str(paths["certificates"]),
        "C2PA_SIGNING_KEY": str(paths["private_key"]),
    }
    return settings.IMAGEGEN


def finish(prompt: str):
    job = run_to_end(services.create_job(prompt=prompt))
    assert job.status == Status.SUCCEEDED, job.error_message
    image = job.images.get()
    stored = get_storage().open(image.file.name).read()
    original = httpx.get(job.result_urls[0]).content
    return job, image, stored, original


def store_of(data: bytes, content_type: str) -> dict:
    """The manifest store in ``data`` as c2pa.Reader reports it, with the trust settings."""
    reader = c2pa.Reader(content_type, io.BytesIO(data), None, credentials._context())
    with reader:
        return json.loads(reader.json())


def active(store: dict) -> dict:
    return store["manifests"][store["active_manifest"]]


def assertion(manifest: dict, label: str) -> dict:
    found = [a["data"] for a in manifest["assertions"] if a["label"].startswith(label)]
    assert found, f"no {label} assertion in {[a['label'] for a in manifest['assertions']]}"
    return found[0]


def image_data_offset(data: bytes, fmt: str) -> int:
    """A byte inside the compressed pixels: PNG IDAT, JPEG scan, WebP VP8/VP8L."""
    if fmt == "png":
        position = 8
        while True:
            length, kind = struct.unpack(">I4s", data[position : position + 8])
            if kind == b"IDAT":
                return position + 8 + length // 2
            position += 12 + length
    if fmt == "jpeg":
        # Walk the segments: the bytes FF DA may also occur inside the
        # manifest's APP11 segments, before the real start of scan.
        position = 2
        while True:
            marker, length = struct.unpack(">xBH", data[position : position + 4])
            if marker == 0xDA:
                return position + 2 + length + 16
            position += 2 + length
    position = 12
    while True:
        fourcc, size = struct.unpack("<4sI", data[position : position + 8])
        if fourcc in (b"VP8 ", b"VP8L"):
            return position + 8 + size // 2
        position += 8 + size + (size & 1)


def manifest_stores_in(data: bytes, fmt: str) -> int:
    """How many C2PA manifest stores the PNG or JPEG container holds: ``caBX``
    chunks, or first JUMBF APP11 segments (sequence number 1)."""
    found, position = 0, 8 if fmt == "png" else 2
    while True:
        if fmt == "png":
            length, kind = struct.unpack(">I4s", data[position : position + 8])
            found += kind == b"caBX"
            if kind == b"IEND":
                return found
            position += 12 + length
        else:
            marker = data[position + 1]
            (length,) = struct.unpack(">H", data[position + 2 : position + 4])
            payload = data[position + 4 : position + 2 + length]
            if marker == 0xDA:
                return found
            found += marker == 0xEB and payload[:2] == b"JP" and payload[4:8] == b"\0\0\0\1"
            position += 2 + length


def tampered(data: bytes, fmt: str) -> bytes:
    changed = bytearray(data)
    changed[image_data_offset(data, fmt)] ^= 0x01
    return bytes(changed)


# -- What finalize stores ----------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_provider_credentials_without_identity_are_stored_byte_for_byte(trusted, fmt):
    """Family: a result carrying the provider's manifest, no signing identity,
    in each format the sandbox serves (PNG, JPEG, WebP). The stored file is
    the provider's bytes (sha256 equal), its manifest validates and is the
    provider's, imagegen's provenance is in the database only, and one byte
    changed in the image data is detected."""
    job, image, stored, original = finish(f"a kite [sandbox:credentials] [sandbox:format={fmt}]")
    assert image.content_type == FORMATS[fmt]
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(original).hexdigest()
    assert image.sha256 == hashlib.sha256(original).hexdigest()
    store = store_of(stored, image.content_type)
    assert store["validation_state"] == "Trusted"
    manifest = active(store)
    assert manifest["claim_generator_info"][0]["name"] == "imagegen sandbox"
    (created,) = assertion(manifest, "c2pa.actions")["actions"]
    assert created["digitalSourceType"] == provenance.AI_GENERATED
    # No XMP of imagegen's in the file: the record is the row's.
    assert provenance.read(get_storage().path(image.file.name)) == {}
    assert image.provenance["job_id"] == str(job.pk)
    assert image.provenance["prompt"] == job.prompt
    assert store_of(tampered(stored, fmt), image.content_type)["validation_state"] == "Invalid"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("provider_signed", [True, False], ids=["provider-manifest", "none"])
def test_with_an_identity_imagegen_signs_a_new_manifest(signing, fmt, provider_signed):
    """Family: a signing identity configured, a result with or without the
    provider's manifest, in PNG, JPEG and WebP. The stored file's chain
    validates against the configured roots; its active manifest is
    imagegen's (c2pa.created, trainedAlgorithmicMedia, the job's facts
    without the prompt); with a provider manifest that manifest is the
    parent ingredient, without one there is no ingredient; the pixels are
    the provider's; tampering with the image data is detected."""
    marker = "[sandbox:credentials]" if provider_signed else "[sandbox:credentials=off]"
    job, image, stored, original = finish(f"a boat {marker} [sandbox:format={fmt}]")
    store = store_of(stored, image.content_type)
    assert store["validation_state"] == "Trusted", store.get("validation_results")
    manifest = active(store)
    assert manifest["claim_generator_info"][0]["name"] == "imagegen"
    (created,) = assertion(manifest, "c2pa.actions")["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == provenance.AI_GENERATED
    assert created["softwareAgent"]["name"] == job.model
    facts = assertion(manifest, credentials.JOB_ASSERTION)
    assert facts["job_id"] == str(job.pk)
    assert (facts["model"], facts["provider"]) == (job.model, "sandbox")
    assert facts["created_at"] == job.created_at.isoformat()
    assert "prompt" not in facts
    ingredients = manifest.get("ingredients", [])
    if provider_signed:
        (parent,) = ingredients
        assert parent["relationship"] == "parentOf"
        provider_label = store_of(original, image.content_type)["active_manifest"]
        assert parent["active_manifest"] == provider_label
        parent_manifest = store["manifests"][provider_label]
        assert parent_manifest["claim_generator_info"][0]["name"] == "imagegen sandbox"
    else:
        assert ingredients == []
    with Image.open(io.BytesIO(stored)) as mine, Image.open(io.BytesIO(original)) as theirs:
        assert mine.convert("RGB").tobytes() == theirs.convert("RGB").tobytes()
    assert image.sha256 == hashlib.sha256(stored).hexdigest()
    assert store_of(tampered(stored, fmt), image.content_type)["validation_state"] == "Invalid"


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_manifest_or_identity_imagegen_writes_its_xmp(trusted, fmt):
    """Family: neither a provider manifest nor an identity, each format: the
    file gets imagegen's XMP as before, and no manifest."""
    job, image, _stored, _ = finish(f"a cup [sandbox:format={fmt}]")
    assert provenance.read(get_storage().path(image.file.name))["job_id"] == str(job.pk)
    assert not credentials.has_manifest(get_storage().path(image.file.name), image.content_type)


@pytest.mark.parametrize("include", [True, False])
def test_prompt_is_signed_only_when_allowed(signing, settings, include):
    """Family: C2PA_INCLUDE_PROMPT on and off; the job facts hold the prompt
    exactly when it is on."""
    settings.IMAGEGEN = {**signing, "C2PA_INCLUDE_PROMPT": include}
    job, image, stored, _ = finish("a secret campaign [sandbox:credentials]")
    facts = assertion(active(store_of(stored, image.content_type)), credentials.JOB_ASSERTION)
    assert ("prompt" in facts) is include
    if include:
        assert facts["prompt"] == job.prompt


@pytest.mark.parametrize("references", [1, 2])
def test_image_to_image_references_are_input_ingredients(signing, settings, references):
    """Family: an image-to-image job with one and with two stored reference
    images, signing on. Each reference is an ``inputTo`` ingredient (title:
    its file name) named by the c2pa.created action beside the provider's
    parent, and the chain still validates."""
    # The provider is sent the references' URLs: they must be absolute.
    settings.MEDIA_URL = "http://127.0.0.1/media/"
    stored_refs = [finish(f"reference {n} [sandbox:credentials=off]")[1] for n in range(references)]
    job = run_to_end(
        services.create_job(
            prompt="the same, at night [sandbox:credentials]",
            mode="image-to-image",
            reference_images=stored_refs,
            reference_urls=["https://example.com/hat.png"],
        )
    )
    assert job.status == Status.SUCCEEDED, job.error_message
    image = job.images.get()
    stored = get_storage().open(image.file.name).read()
    store = store_of(stored, image.content_type)
    assert store["validation_state"] == "Trusted", store.get("validation_results")
    manifest = active(store)
    relationships = sorted(i["relationship"] for i in manifest["ingredients"])
    assert relationships == ["inputTo"] * references + ["parentOf"]
    titles = {i["title"] for i in manifest["ingredients"] if i["relationship"] == "inputTo"}
    assert titles == {os.path.basename(ref.file.name) for ref in stored_refs}
    (created,) = assertion(manifest, "c2pa.actions")["actions"]
    assert len(created["parameters"]["ingredients"]) == references + 1


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize("streaming", [True, False], ids=["data-hashed", "builder-sign"])
@pytest.mark.parametrize("parent", [True, False])
def test_signed_by_streaming_or_by_the_library_validates(
    identity, tmp_path, monkeypatch, fmt, streaming, parent
):
    """Family: a PNG and a JPEG, each signed by streaming
    (imagegen.c2pa_streaming, the default for both) and by the library's
    Builder.sign (where data-hashed signing is missing), with and without
    the provider's manifest as parent. Each validates against the roots,
    holds one manifest store (the provider's old one replaced, not kept
    beside it), keeps the pixels, and fails validation once a byte of its
    image data changes."""
    content_type = FORMATS[fmt]
    assert credentials.c2pa_streaming.supported(content_type)
    if not streaming:
        monkeypatch.setattr(credentials.c2pa_streaming, "supported", lambda _: False)
    test_identity = identity[0]
    picture = render.render("a lamp", "1k", "1:1", fmt)
    data = render.with_credentials(picture, fmt, "gpt-image-2") if parent else picture
    path = tmp_path / f"result.{render.EXTENSIONS[fmt]}"
    path.write_bytes(data)
    anchors = (render.IDENTITY / "root.pem").read_text() + test_identity.root
    record = provenance.Provenance(
        prompt="a lamp", model="gpt-image-2", provider="sandbox", job_id="j", created_at=_now()
    )
    with override_settings(IMAGEGEN={"C2PA_TRUST_ANCHORS": anchors}):
        credentials.sign(
            path,
            path,
            record,
            content_type=content_type,
            identity=credentials.load_identity(
                test_identity.certificates, test_identity.private_key
            ),
            parent=parent,
        )
        signed = path.read_bytes()
        store = store_of(signed, content_type)
        assert store["validation_state"] == "Trusted", store.get("validation_results")
        assert len(store["manifests"]) == (2 if parent else 1)
        assert store_of(tampered(signed, fmt), content_type)["validation_state"] == "Invalid"
    assert manifest_stores_in(signed, fmt) == 1
    with Image.open(io.BytesIO(signed)) as mine, Image.open(io.BytesIO(picture)) as theirs:
        assert mine.tobytes() == theirs.tobytes()


# -- Detection -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("signed", [True, False])
def test_detection_by_library_and_by_container_agree(tmp_path, fmt, signed):
    """Family: sandbox pictures in each format, signed or not. c2pa.Reader
    (has_manifest) and the container sniff used without the extra
    (has_c2pa_box) both say whether a manifest is there."""
    data = render.render("a tree", "1k", "1:1", fmt)
    if signed:
        data = render.with_credentials(data, fmt, "gpt-image-2")
    path = tmp_path / f"image.{render.EXTENSIONS[fmt]}"
    path.write_bytes(data)
    assert credentials.has_manifest(path, FORMATS[fmt]) is signed
    assert provenance.has_c2pa_box(path) is signed


# -- Identity settings -----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["es256", "ed25519"])
@pytest.mark.parametrize("as_text", [True, False], ids=["pem-text", "paths"])
def test_identity_from_paths_or_pem_text_signs(tmp_path, algorithm, as_text):
    """Family: each algorithm the command makes, the identity given as file
    paths or as PEM text; the signed file validates against its root, with
    the algorithm read from the key."""
    test_identity = make_identity(algorithm)
    paths = test_identity.write(tmp_path / "id")
    values = (
        (test_identity.certificates, test_identity.private_key)
        if as_text
        else (str(paths["certificates"]), str(paths["private_key"]))
    )
    with override_settings(
        IMAGEGEN={
            "C2PA_SIGNING_CERTIFICATES": values[0],
            "C2PA_SIGNING_KEY": values[1],
            "C2PA_TRUST_ANCHORS": str(paths["root"]),
        }
    ):
        loaded = credentials.signing_identity()
        assert loaded.algorithm == algorithm
        target = tmp_path / "out.png"
        target.write_bytes(render.render("a fox", "1k", "1:1"))
        record = provenance.Provenance(
            prompt="a fox", model="m", provider="p", job_id="j", created_at=_now()
        )
        assert credentials.write(target, record, format="PNG", content_type="image/png") == (
            credentials.SIGNED
        )
        with target.open("rb") as stream:
            read = credentials.read(stream, "image/png")
    assert read.state == "trusted"
    assert read.chain[0].job["job_id"] == "j"


@pytest.mark.parametrize(
    "certificates, key, problem",
    [
        ("CERTS", None, "both"),
        (None, "KEY", "both"),
        ("/nonexistent/certificates.pem", "KEY", "cannot read"),
        ("CERTS", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", "PEM"),
    ],
)
def test_unusable_identity_settings_are_refused_without_showing_the_key(
    identity, certificates, key, problem
):
    """Family: only the chain set, only the key set, a path that cannot be
    read, a key that is not a PEM key. Each raises a configuration error
    naming the problem; no message quotes the key."""
    real = identity[0]
    certificates = real.certificates if certificates == "CERTS" else certificates
    key = real.private_key if key == "KEY" else key
    with override_settings(
        IMAGEGEN={"C2PA_SIGNING_CERTIFICATES": certificates, "C2PA_SIGNING_KEY": key}
    ):
        with pytest.raises(ImagegenConfigurationError, match=problem) as raised:
            credentials.signing_identity()
    assert "PRIVATE KEY" not in str(raised.value)
    assert real.private_key.splitlines()[1] not in str(raised.value)


# -- Reading: the admin's summary -----------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["kept", "signed", "tampered", "none", "discarded", "missing-file"]
)
def test_summary_names_state_model_provider_and_chain(trusted, settings, identity, case):
    """Family: a file kept as the provider's, one imagegen signed over the
    provider's, the signed one tampered with, one with no credentials, an
    image whose file was discarded, one whose file is gone from storage. The
    rendered summary says the state, the model and provider, and lists the
    chain's signers; without a readable manifest it says there is none."""
    if case == "signed" or case == "tampered":
        paths = identity[1]
        settings.IMAGEGEN = {
            **trusted,
            "C2PA_SIGNING_CERTIFICATES": str(paths["certificates"]),
            "C2PA_SIGNING_KEY": str(paths["private_key"]),
        }
    marker = "" if case == "none" else "[sandbox:credentials]"
    job, image, stored, _ = finish(f"a hill {marker}")
    if case == "tampered":
        path = get_storage().path(image.file.name)
        with open(path, "wb") as fh:
            fh.write(tampered(stored, "png"))
    if case == "discarded":
        image.file = ""
    if case == "missing-file":
        get_storage().delete(image.file.name)
    html = credentials.render_summary(image)
    if case in ("none", "discarded", "missing-file"):
        assert "No Content Credentials." in html
        return
    state = "invalid" if case == "tampered" else "valid"
    assert f"Content Credentials: {state}, made by {job.model} via sandbox" in html
    assert "imagegen sandbox 1, signed by imagegen sandbox signer (imagegen sandbox)" in html
    if case == "kept":
        assert html.count(", signed by ") == 1
    else:
        assert "imagegen 0.1.0, signed by imagegen test signer (imagegen test)" in html
        assert html.count(", signed by ") == 2
    if case == "tampered":
        assert "assertion.dataHash.mismatch" in html


# -- The development command -------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["es256", "ed25519"])
def test_c2pa_identity_command_writes_a_usable_identity(tmp_path, algorithm):
    """Family: each algorithm. The command writes the chain, a private key
    only its owner reads, and the root; settings lines that name them; and
    the identity signs a file that validates against the root."""
    out = io.StringIO()
    call_command(
        "imagegen", "c2pa-identity", "--out", str(tmp_path), "--algorithm", algorithm, stdout=out
    )
    for name in ("certificates.pem", "private-key.pem", "root.pem"):
        assert str(tmp_path / name) in out.getvalue()
    assert os.stat(tmp_path / "private-key.pem").st_mode & 0o077 == 0
    loaded = credentials.load_identity(
        (tmp_path / "certificates.pem").read_text(), (tmp_path / "private-key.pem").read_text()
    )
    assert loaded.algorithm == algorithm


def _now():
    return timezone.now()


# -- System check -------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "fine",
        "nothing",
        "certificates-only",
        "key-only",
        "unreadable",
        "mismatched",
        "bad-anchors",
        "prompt-not-bool",
    ],
)
def test_system_check_reports_unusable_credentials_settings(tmp_path, identity, case):
    """Family: a working identity, none at all, only the chain, only the
    key, a path that cannot be read, a chain with another identity's key,
    unreadable trust anchors, C2PA_INCLUDE_PROMPT not a bool. The first two
    pass; every other is imagegen.E034, and no message quotes the key."""
    from imagegen.checks import credentials as credentials_check

    real, paths = identity
    other = make_identity("es256")
    chain, key = str(paths["certificates"]), str(paths["private_key"])
    config = {
        "fine": {"C2PA_SIGNING_CERTIFICATES": chain, "C2PA_SIGNING_KEY": key},
        "nothing": {},
        "certificates-only": {"C2PA_SIGNING_CERTIFICATES": chain},
        "key-only": {"C2PA_SIGNING_KEY": key},
        "unreadable": {"C2PA_SIGNING_CERTIFICATES": str(tmp_path / "x"), "C2PA_SIGNING_KEY": key},
        "mismatched": {"C2PA_SIGNING_CERTIFICATES": chain, "C2PA_SIGNING_KEY": other.private_key},
        "bad-anchors": {"C2PA_TRUST_ANCHORS": str(tmp_path / "missing.pem")},
        "prompt-not-bool": {"C2PA_INCLUDE_PROMPT": "yes"},
    }[case]
    with override_settings(IMAGEGEN=config):
        messages = credentials_check.check()
    if case in ("fine", "nothing"):
        assert messages == []
        return
    assert [m.id for m in messages] == ["imagegen.E034"]
    for secret in (real.private_key, other.private_key):
        assert secret.splitlines()[1] not in f"{messages[0].msg} {messages[0].hint}"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("how", ["marker", "run-wide", "run-wide, marker off", "unsigned"])
def test_the_openai_side_of_the_sandbox_signs_like_the_apixo_side(trusted, tmp_path, fmt, how):
    """Family: the sandbox's OpenAI Images endpoint, each output format, signing
    asked per task (``[sandbox:credentials]``), for the whole run
    (``--credentials``, ``content_credentials``), turned off per task under the
    run-wide setting, and not asked: the returned image carries the
    sandbox's trusted manifest exactly when asked."""
    from imagegen.sandbox import SandboxConfig, SandboxServer
    from imagegen.sandbox.__main__ import add_arguments, sandbox_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run_wide = how.startswith("run-wide")
    options = vars(parser.parse_args(["--credentials"] if run_wide else []))
    assert sandbox_config(options).content_credentials is run_wide
    markers = {
        "marker": "[sandbox:credentials]",
        "run-wide, marker off": "[sandbox:credentials=off]",
    }
    prompt = f"a kite {markers.get(how, '')}"
    config = SandboxConfig(latency=(0.0, 0.0), content_credentials=run_wide)
    with SandboxServer(config=config) as sandbox:
        answer = httpx.post(
            f"{sandbox.url}/v1/images/generations",
            json={"model": "gpt-image-1", "prompt": prompt, "output_format": fmt},
            headers={"Authorization": "Bearer sk-test"},
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    data = base64.b64decode(answer.json()["data"][0]["b64_json"])
    (tmp_path / "result").write_bytes(data)
    signed = how in ("marker", "run-wide")
    assert provenance.has_c2pa_box(tmp_path / "result") is signed
    if signed:
        assert store_of(data, FORMATS[fmt])["validation_state"] == "Trusted"


@pytest.mark.parametrize("signed", [True, False], ids=["provider-manifest", "none"])
def test_the_admin_image_page_shows_the_content_credentials(trusted, admin_client, signed):
    """Family: an image whose file carries the provider's manifest, and one
    without: the image's admin page has a Content Credentials line, with the
    state, the model and provider and the chain when there is a manifest."""
    from django.urls import reverse

    marker = " [sandbox:credentials]" if signed else ""
    _job, image, _stored, _original = finish(f"a kite{marker}")

    html = admin_client.get(reverse("admin:imagegen_generatedimage_change", args=[image.pk]))
    html = html.content.decode()

    assert "Content Credentials" in html
    assert ("signed by imagegen sandbox signer" in html) is signed
    if signed:
        assert "Content Credentials: valid, made by gpt-image-2 via sandbox" in html
