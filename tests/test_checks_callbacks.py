"""CALLBACK_BASE_URL: W003 (unset), E008 (not an absolute http(s) URL),
E019 (not an origin), E020 (not public https while a real provider calls back)."""

from __future__ import annotations

import pytest

from .test_checks import ids

APIXO = {"PROVIDER": "apixo", "PROVIDERS": {"apixo": {"API_KEY": "k"}}}


@pytest.mark.parametrize("base", [None, ""])
def test_unset_is_a_warning(settings, base):
    assert "imagegen.W003" in ids({"CALLBACK_BASE_URL": base}, settings)


@pytest.mark.parametrize(
    "base", ["example.com", "ftp://example.com", "https://", "https://[::1", "https://x.com:port"]
)
def test_not_an_absolute_http_url_is_an_error(settings, base):
    assert "imagegen.E008" in ids({"CALLBACK_BASE_URL": base}, settings)


@pytest.mark.parametrize(
    "base",
    [
        "https://www.example.com/app",
        "https://www.example.com/app/",
        "https://www.example.com/imagegen/",
        "https://www.example.com//",
        "https://www.example.com/?site=1",
        "https://www.example.com#top",
        "https://www.example.com/app?x=1#y",
    ],
)
def test_path_query_or_fragment_is_an_error(settings, base):
    messages = _messages({"CALLBACK_BASE_URL": base}, settings, "imagegen.E019")
    assert messages, base
    assert "'https://www.example.com'" in messages[0].hint
    assert "FORCE_SCRIPT_NAME" in messages[0].hint


@pytest.mark.parametrize(
    "base", ["https://www.example.com", "https://www.example.com/", "https://example.com:8443"]
)
def test_origin_passes(settings, base):
    found = ids({**APIXO, "CALLBACK_BASE_URL": base}, settings)
    assert not {"imagegen.E008", "imagegen.E019", "imagegen.E020"} & found


#: Every spelling of a host a provider on the internet cannot reach, and plain http.
UNREACHABLE = [
    "http://www.example.com",
    "http://localhost:8000",
    "https://localhost",
    "https://app.localhost",
    "https://127.0.0.1:8000",
    "https://127.1",
    "https://2130706433",
    "https://0x7f.1",
    "https://[::1]",
    "https://[::ffff:127.0.0.1]",
    "https://10.0.0.5",
    "https://172.16.4.4",
    "https://192.168.1.20",
    "https://169.254.169.254",
    "https://0.0.0.0",
]


@pytest.mark.parametrize("base", UNREACHABLE)
def test_unreachable_origin_with_a_real_provider_is_an_error(settings, base):
    messages = _messages({**APIXO, "CALLBACK_BASE_URL": base}, settings, "imagegen.E020")
    assert messages, base
    assert "'apixo'" in messages[0].msg


@pytest.mark.parametrize("base", UNREACHABLE)
def test_a_real_provider_editors_may_choose_counts_too(settings, base):
    """The default is the sandbox, but an APIXO entry with a key is offered to editors."""
    imagegen = {"PROVIDERS": {"apixo": {"API_KEY": "k"}}, "CALLBACK_BASE_URL": base}
    assert "imagegen.E020" in ids(imagegen, settings)


@pytest.mark.parametrize("base", UNREACHABLE)
@pytest.mark.parametrize(
    "imagegen",
    [
        {},  # the sandbox: local by design
        {"PROVIDERS": {"apixo": {"API_KEY": None}}},  # APIXO without a key is not offered
        {"PROVIDER": "openai", "PROVIDERS": {"openai": {"API_KEY": "k"}}},  # no callbacks
    ],
)
def test_no_real_provider_calling_back_passes(settings, base, imagegen):
    assert "imagegen.E020" not in ids({**imagegen, "CALLBACK_BASE_URL": base}, settings)


def _messages(imagegen, settings, check_id):
    from imagegen.checks import check_settings

    settings.IMAGEGEN = imagegen
    return [message for message in check_settings() if message.id == check_id]
