"""The describers (imagegen.describers) against the sandbox's chat
completions over real HTTP, by family:

- languages: alt text and prompt drafts in English, French, German and
  Spanish, regional codes (``fr-ca``, ``de-AT``) as their language, any
  other language (``ja``, ``xx``) in English; with and without context;
- the sandbox's failures on demand, each kind, and what the describer makes
  of it: HTTP 429 (temporary, with its Retry-After), 500 and 503
  (temporary), 400 (permanent), a refused key (permanent, the key in no
  message), no answer (hang-up, a late answer past the timeout:
  temporary), an empty answer and a refusal (permanent), an over-long
  answer (cut to 500 characters), a failure the first time only (the next
  call succeeds);
- the registry: ``None`` (off), ``"auto"`` (the sandbox describer with the
  sandbox provider, pointed at its server; off with another provider),
  an explicit backend; one instance per settings, a new one when they
  change; the OpenAI describer's key from its options, else the ``openai``
  provider's; no proxy from the environment;
- the system checks: E036 for each way DESCRIBER cannot load (not a dict,
  keys besides BACKEND and OPTIONS, OPTIONS not a dict, an unimportable
  backend, no Describer, an unknown option, a bad value, no API key);
  E037 for REQUIRE_ALT_TEXT not a bool; none for the good settings;
- the system checks build the describer (every command and worker start
  runs them) without importing ``openai``, for each OpenAI-compatible
  backend (the sandbox's, OpenAI's);
- the image sent: a small PNG as it is, a larger one reduced to
  IMAGE_SIZE (a JPEG; a PNG when it has transparency).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import subprocess
import sys

import pytest
from PIL import Image

from imagegen.checks import describers as describer_checks
from imagegen.describers import DescriberError, get_describer
from imagegen.describers.openai import OpenAIDescriber, data_url
from imagegen.describers.sandbox import SandboxDescriber
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.sandbox import render

from .test_cli_argv import ROOT, environment

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("drafting")]

SANDBOX = "imagegen.describers.sandbox.SandboxDescriber"
OPENAI = "imagegen.describers.openai.OpenAIDescriber"
IMAGE = render.render("a lighthouse", "1k", "16:9")


@pytest.fixture
def describer(imagegen_settings):
    return get_describer()


@pytest.mark.parametrize(
    ("language", "alt_text", "prompt"),
    [
        (
            "en",
            "Generated image (1024×576): a lighthouse at dawn.",
            "An editorial illustration for “Cover”: Title: Lighthouses",
        ),
        (
            "fr",
            "Image générée (1024×576) : a lighthouse at dawn.",
            "Une illustration éditoriale pour « Cover » : Title: Lighthouses",
        ),
        (
            "fr-ca",
            "Image générée (1024×576) : a lighthouse at dawn.",
            "Une illustration éditoriale pour « Cover » : Title: Lighthouses",
        ),
        (
            "de",
            "Generiertes Bild (1024×576): a lighthouse at dawn.",
            "Eine redaktionelle Illustration für „Cover“: Title: Lighthouses",
        ),
        (
            "de-AT",
            "Generiertes Bild (1024×576): a lighthouse at dawn.",
            "Eine redaktionelle Illustration für „Cover“: Title: Lighthouses",
        ),
        (
            "es",
            "Imagen generada (1024×576): a lighthouse at dawn.",
            "Una ilustración editorial para «Cover»: Title: Lighthouses",
        ),
        (
            "ja",
            "Generated image (1024×576): a lighthouse at dawn.",
            "An editorial illustration for “Cover”: Title: Lighthouses",
        ),
        (
            "xx",
            "Generated image (1024×576): a lighthouse at dawn.",
            "An editorial illustration for “Cover”: Title: Lighthouses",
        ),
    ],
)
def test_languages(describer, sandbox, language, alt_text, prompt):
    context = "a lighthouse at dawn [sandbox:count=2]"
    assert describer.describe(IMAGE, "image/png", language=language, context=context) == alt_text
    drafted = describer.draft_prompt("Title: Lighthouses", language=language, field_label="Cover")
    assert drafted == prompt
    assert sandbox.stats()["chat_completions"] == 2


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Generated image (1024×576): a colour gradient with the words “imagegen sandbox”."),
        ("de", "Generiertes Bild (1024×576): ein Farbverlauf mit den Worten „imagegen sandbox“."),
    ],
)
def test_without_context(describer, language, expected):
    assert describer.describe(IMAGE, "image/png", language=language) == expected


@pytest.mark.parametrize(
    ("marker", "message", "temporary", "retry_after"),
    [
        ("describe-http=429", "HTTP 429", True, 1.0),
        ("describe-http=500", "HTTP 500", True, None),
        ("describe-http=503", "HTTP 503", True, None),
        ("describe-http=400", "HTTP 400", False, None),
        ("describe-http=401", "rejected the API key", False, None),
        ("describe-hangup", "could not be reached", True, None),
        ("describe-delay=3", "did not answer in time", True, None),
        ("describe=empty", "no text", False, None),
        ("describe=refusal", "declined", False, None),
    ],
)
def test_failures_on_demand(
    settings, imagegen_settings, sandbox, marker, message, temporary, retry_after
):
    settings.IMAGEGEN = {
        **imagegen_settings,
        "DESCRIBER": {"BACKEND": SANDBOX, "OPTIONS": {"TIMEOUT": 1}},
    }
    describer = get_describer()
    for call in (
        lambda: describer.describe(
            IMAGE, "image/png", language="en", context=f"x [sandbox:{marker}]"
        ),
        lambda: describer.draft_prompt(f"x [sandbox:{marker}]", language="en"),
    ):
        with pytest.raises(DescriberError) as info:
            call()
        assert message in str(info.value)
        assert (info.value.temporary, info.value.retry_after) == (temporary, retry_after)


def test_long_answer_is_cut(describer):
    text = describer.describe(IMAGE, "image/png", language="en", context="[sandbox:describe=long]")
    assert len(text) <= 500 and text.startswith("sandbox sandbox")


def test_failure_the_first_time_only(describer, sandbox):
    context = "a kite [sandbox:describe-http=503x1]"
    with pytest.raises(DescriberError):
        describer.describe(IMAGE, "image/png", language="en", context=context)
    assert describer.describe(IMAGE, "image/png", language="en", context=context).endswith("kite.")


def test_refused_key_is_never_repeated(settings, imagegen_settings, sandbox, caplog):
    """The sandbox, like OpenAI, quotes part of a refused key: none of it is repeated."""
    key = "sk-test-0123456789abcdef"
    sandbox.config.api_key = "the-right-key"
    try:
        settings.IMAGEGEN = {
            **imagegen_settings,
            "DESCRIBER": {"BACKEND": SANDBOX, "OPTIONS": {"API_KEY": key}},
        }
        with caplog.at_level(logging.DEBUG), pytest.raises(DescriberError) as info:
            get_describer().describe(IMAGE, "image/png", language="en")
    finally:
        sandbox.config.api_key = None
    assert "rejected the API key" in str(info.value)
    for shown in (str(info.value), caplog.text):
        assert key not in shown and key[-4:] not in shown


def test_proxies_from_the_environment_are_not_used(settings, imagegen_settings, monkeypatch):
    """As imagegen's providers: a proxy in the environment (here one that does
    not answer) is not used."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings.IMAGEGEN = {
        **imagegen_settings,
        "DESCRIBER": {"BACKEND": SANDBOX, "OPTIONS": {"MODEL": "no-proxy"}},
    }
    assert get_describer().describe(IMAGE, "image/png", language="en", context="a kite")


class TestRegistry:
    def test_off(self, settings, imagegen_settings):
        settings.IMAGEGEN = {**imagegen_settings, "DESCRIBER": None}
        assert get_describer() is None

    def test_auto_follows_the_sandbox_provider(self, settings, imagegen_settings, sandbox):
        describer = get_describer()
        assert isinstance(describer, SandboxDescriber)
        assert describer.base_url == f"{sandbox.url}/v1"
        assert get_describer() is describer
        settings.IMAGEGEN = {**imagegen_settings, "PROVIDER": "apixo"}
        assert get_describer() is None

    def test_new_instance_when_settings_change(self, settings, imagegen_settings):
        first = get_describer()
        settings.IMAGEGEN = {
            **imagegen_settings,
            "DESCRIBER": {"BACKEND": SANDBOX, "OPTIONS": {"MODEL": "other-model"}},
        }
        second = get_describer()
        assert second is not first and second.model == "other-model"

    @pytest.mark.parametrize(
        ("options", "providers", "key"),
        [
            ({"API_KEY": "own-key"}, {"openai": {"API_KEY": "provider-key"}}, "own-key"),
            ({}, {"openai": {"API_KEY": "provider-key"}}, "provider-key"),
        ],
    )
    def test_openai_key(self, settings, options, providers, key):
        settings.IMAGEGEN = {
            "PROVIDERS": providers,
            "DESCRIBER": {"BACKEND": OPENAI, "OPTIONS": options},
        }
        describer = get_describer()
        assert isinstance(describer, OpenAIDescriber)
        assert describer.api_key() == key
        assert describer.base_url == "https://api.openai.com/v1"


@pytest.mark.parametrize(
    ("describer", "fragment"),
    [
        ("on", "must be None, 'auto' or a dict"),
        ({"BACKEND": SANDBOX, "OPTION": {}}, "keys other than BACKEND and OPTIONS"),
        ({"BACKEND": SANDBOX, "OPTIONS": ["MODEL"]}, "must be a dict"),
        ({"BACKEND": "imagegen.nowhere.Describer"}, "cannot be imported"),
        ({"BACKEND": "imagegen.conf.get_setting"}, "subclass of"),
        ({"BACKEND": SANDBOX, "OPTIONS": {"MODLE": "x"}}, "does not read: MODLE"),
        ({"BACKEND": SANDBOX, "OPTIONS": {"TIMEOUT": 0}}, "'TIMEOUT'] must be a positive"),
        ({"BACKEND": SANDBOX, "OPTIONS": {"TIMEOUT": 91}}, "up to 90"),
        ({"BACKEND": SANDBOX, "OPTIONS": {"IMAGE_SIZE": "big"}}, "'IMAGE_SIZE'] must be"),
        ({"BACKEND": SANDBOX, "OPTIONS": {"DETAIL": "max"}}, "'DETAIL'] must be"),
        ({"BACKEND": OPENAI}, "'API_KEY'] is not set"),
    ],
)
def test_check_e036(settings, imagegen_settings, describer, fragment):
    settings.IMAGEGEN = {**imagegen_settings, "DESCRIBER": describer}
    errors = describer_checks.check()
    assert [error.id for error in errors] == ["imagegen.E036"]
    assert fragment in errors[0].msg
    with pytest.raises(ImagegenConfigurationError):
        get_describer()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_check_e037(settings, imagegen_settings, value):
    settings.IMAGEGEN = {**imagegen_settings, "REQUIRE_ALT_TEXT": value}
    assert [error.id for error in describer_checks.check()] == ["imagegen.E037"]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"DESCRIBER": None, "REQUIRE_ALT_TEXT": True},
        {"DESCRIBER": {"BACKEND": SANDBOX, "OPTIONS": {"MODEL": "m", "DETAIL": "high"}}},
        {"DESCRIBER": {"BACKEND": OPENAI, "OPTIONS": {"API_KEY": "k"}}},
        {"PROVIDER": "apixo", "PROVIDERS": {"apixo": {"API_KEY": "k"}}},
    ],
)
def test_checks_pass(settings, imagegen_settings, overrides):
    settings.IMAGEGEN = {**imagegen_settings, **overrides}
    assert describer_checks.check() == []


def _png(size, mode="RGB"):
    out = io.BytesIO()
    Image.new(mode, size, (10, 20, 30, 128)[: len(mode)]).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "content_type", "sent_type", "sent_size"),
    [
        (_png((800, 600)), "image/png", "image/png", (800, 600)),
        (_png((2048, 1024)), "image/png", "image/jpeg", (1024, 512)),
        (_png((600, 2400), "RGBA"), "image/png", "image/png", (256, 1024)),
    ],
)
def test_image_sent(data, content_type, sent_type, sent_size):
    url = data_url(data, content_type, 1024)
    head, _, encoded = url.partition(",")
    assert head == f"data:{sent_type};base64"
    sent = base64.b64decode(encoded)
    if sent_size == Image.open(io.BytesIO(data)).size:
        assert sent == data
    with Image.open(io.BytesIO(sent)) as image:
        assert image.size == sent_size


def test_auto_is_off_without_the_openai_package(imagegen_settings, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openai" else real(name, *a)
    )
    assert get_describer() is None


#: Run in a new process (this one has imported openai): the checks, then what they left.
CHECKS_THEN_MODULES = """
import json, sys
import django
django.setup()
from django.core import checks
from imagegen.describers import get_describer
messages = [m.id for m in checks.run_checks() if m.id and m.id.startswith("imagegen.E")]
imported = "openai" in sys.modules
print(json.dumps([messages, imported, type(get_describer()).__name__]))
"""


@pytest.mark.parametrize("backend", [SANDBOX, OPENAI])
def test_the_checks_build_the_describer_without_importing_openai(backend):
    """Importing ``openai`` takes about a second of CPU; the checks run at every
    ``manage.py`` command and worker start, so only a request may import it."""
    describer = {"BACKEND": backend, "OPTIONS": {"API_KEY": "k"}}
    overrides = {"IMAGEGEN": {"DESCRIBER": describer}, "CELERY_BROKER_URL": "memory://"}
    result = subprocess.run(
        [sys.executable, "-c", CHECKS_THEN_MODULES],
        cwd=ROOT,
        env=environment(overrides),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    messages, imported, built = json.loads(result.stdout.splitlines()[-1])
    assert (messages, imported, built) == ([], False, backend.rsplit(".", 1)[1])
