"""Provider entries: imagegen.E021 (PROVIDERS not a dict of dicts, or an option
the provider does not read), E004 for every entry; the options each provider
class declares; the built-in sandbox entry's latency."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagegen import conf, scheduling
from imagegen.choices import Resolution
from imagegen.providers import Provider, get_provider
from imagegen.providers.apixo import APIXOProvider
from imagegen.sandbox import SandboxConfig
from imagegen.sandbox import __main__ as sandbox_cli

from .test_checks import ids


class DeclaringProvider(APIXOProvider):
    """A custom provider that declares its own option."""

    option_names = frozenset({"REGION"})


class UndeclaringProvider(APIXOProvider):
    """A custom provider written before option names were declared."""


def _e021(imagegen, settings):
    from imagegen.checks import check_settings

    settings.IMAGEGEN = imagegen
    return [message for message in check_settings() if message.id == "imagegen.E021"]


@pytest.mark.parametrize(
    "providers",
    [[], "apixo", ("apixo",), {"apixo": "k"}, {"apixo": ["API_KEY", "k"]}, {"apixo": None}],
)
def test_providers_must_be_a_dict_of_dicts(settings, providers):
    assert _e021({"PROVIDERS": providers}, settings)


@pytest.mark.parametrize(
    ("name", "entry", "typo", "meant"),
    [
        ("apixo", {"API_KEY": "k", "APIKEY": "x"}, "APIKEY", "API_KEY"),
        ("apixo", {"api_key": "k"}, "api_key", "API_KEY"),
        ("apixo", {"API_KEY": "k", "BASEURL": "https://x"}, "BASEURL", "BASE_URL"),
        ("sandbox", {"LATENCEY": {"1k": (1, 2)}}, "LATENCEY", "LATENCY"),
        ("sandbox", {"TIME_OUT": 5}, "TIME_OUT", "TIMEOUT"),
        ("openai", {"API_KEY": "k", "QUALTY": "high"}, "QUALTY", "QUALITY"),
        (
            "openai",
            {"API_KEY": "k", "REFERENCE_HOSTS": ()},
            "REFERENCE_HOSTS",
            "REFERENCE_ALLOWED_HOSTS",
        ),
        ("openai", {"API_KEY": "k", "WATERMARK": True}, "WATERMARK", None),
        ("mine", {"CLASS": f"{__name__}.DeclaringProvider", "REGON": "eu"}, "REGON", "REGION"),
    ],
)
def test_unknown_option_is_an_error_with_a_suggestion(settings, name, entry, typo, meant):
    """Typos of base, HTTP and subclass options, in every built-in entry and a
    custom class; the selected provider or not."""
    messages = _e021({"PROVIDERS": {name: entry}}, settings)
    assert len(messages) == 1
    assert repr(typo) in messages[0].msg
    if meant:
        assert f"Did you mean {meant!r}?" in messages[0].hint
    else:
        assert "Did you mean" not in messages[0].hint


@pytest.mark.parametrize("name", sorted(conf.PROVIDER_DEFAULTS))
def test_every_built_in_option_is_known(settings, name):
    """Setting every option of a built-in entry explicitly is no error."""
    entry = dict(conf.PROVIDER_DEFAULTS[name], API_KEY="k")
    assert not _e021({"PROVIDER": name, "PROVIDERS": {name: entry}}, settings)


def test_custom_options_are_known(settings):
    entry = {"CLASS": f"{__name__}.DeclaringProvider", "REGION": "eu", "API_KEY": "k"}
    assert not _e021({"PROVIDERS": {"mine": entry}}, settings)


def test_a_provider_that_declares_nothing_is_not_checked(settings):
    assert UndeclaringProvider.known_options() is None
    entry = {"CLASS": f"{__name__}.UndeclaringProvider", "REGION": "eu", "API_KEY": "k"}
    assert not _e021({"PROVIDERS": {"mine": entry}}, settings)


def test_every_option_read_is_declared():
    """Every ``options.get("X")`` / ``options["X"]`` in imagegen is an option some
    provider class declares, so a correct key is never reported as a typo."""
    declared = set().union(
        *(type(get_provider(name)).known_options() for name in conf.PROVIDER_DEFAULTS)
    )
    read = set()
    for source in Path(conf.__file__).parent.rglob("*.py"):
        if "sandbox" not in source.parts:
            read |= set(re.findall(r'options(?:\.get\(|\[)\s*"([A-Z][A-Z_]+)"', source.read_text()))
    assert read, "the pattern no longer finds option reads"
    assert read <= declared


def test_an_entry_that_cannot_load_is_an_error_even_when_not_selected(settings):
    found = ids({"PROVIDERS": {"mine": {"CLASS": "no_such_module.Provider"}}}, settings)
    assert "imagegen.E004" in found
    found = ids({"PROVIDERS": {"mine": {"BASE_URL": "https://x"}}}, settings)
    assert "imagegen.E004" in found


def test_known_options_gathers_the_whole_hierarchy():
    assert {"CLASS", "MODEL", "BASE_URL", "API_KEY", "REGION"} <= (
        DeclaringProvider.known_options() or set()
    )
    assert Provider.known_options() == Provider.option_names


# --- The built-in sandbox entry's latency -----------------------------------


def _sandbox_defaults(monkeypatch):
    """The latency ranges the sandbox answers in by default: its config's and its CLI's."""

    class Started(Exception):
        pass

    def capture(host, port, *, config):
        raise Started(config)

    monkeypatch.setattr(sandbox_cli, "SandboxServer", capture)
    with pytest.raises(Started) as started:
        sandbox_cli.main([])
    return [SandboxConfig().latency, started.value.args[0].latency]


@pytest.mark.parametrize("resolution", Resolution.values)
def test_sandbox_latency_covers_the_sandbox_with_a_margin(monkeypatch, resolution):
    low, high = conf.PROVIDER_DEFAULTS["sandbox"]["LATENCY"][resolution]
    for answers_low, answers_high in _sandbox_defaults(monkeypatch):
        assert low <= answers_low
        assert answers_high < high <= answers_high + 5


@pytest.mark.parametrize("resolution", Resolution.values)
@pytest.mark.parametrize("callbacks", [False, True], ids=["polling", "callback-lost"])
def test_sandbox_job_is_polled_soon_after_the_sandbox_answered(
    settings, monkeypatch, resolution, callbacks
):
    """Outside the example project (no LATENCY of its own), a sandbox job that
    finished at the sandbox's slowest is polled within a few seconds of it,
    whether no callback was expected or one was lost (APIXO's model: ~150 s)."""
    settings.IMAGEGEN = {}
    latency = get_provider("sandbox").latency(resolution)
    slowest = max(high for _low, high in _sandbox_defaults(monkeypatch))
    waited = scheduling.first_poll_delay(latency, callbacks=callbacks)
    while waited < slowest:
        waited += scheduling.next_poll_delay(latency, waited)
    assert waited <= slowest + 5
