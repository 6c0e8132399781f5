"""Provider entries: imagegen.E021 (PROVIDERS not a dict of dicts, or an option
the provider does not read), E004 for every entry; the options each provider
class declares; the built-in sandbox entry's latency; the sandbox with DEBUG
off (E026, W001, and the same rule at run time)."""

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

# On every database: the SQLite pass runs them too.
pytestmark = pytest.mark.services


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


# --- The sandbox with DEBUG off ---------------------------------------------

#: Where the sandbox stands in IMAGEGEN: the default provider, a provider
#: editors may choose beside a real default, or not configured at all.
SANDBOX_PLACES = {
    "default": {"PROVIDER": "sandbox"},
    "choosable": {"PROVIDER": "apixo", "PROVIDERS": {"apixo": {"API_KEY": "k"}, "sandbox": {}}},
    "absent": {"PROVIDER": "apixo", "PROVIDERS": {"apixo": {"API_KEY": "k"}}},
}
#: IMAGEGEN_ALLOW_SANDBOX: unset, False, True, and values that are not a bool.
ALLOW_VALUES = {"unset": None, "false": False, "true": True, "string": "True", "one": 1}


def _allow(settings, value):
    if value == "unset":
        del settings.IMAGEGEN_ALLOW_SANDBOX
    else:
        settings.IMAGEGEN_ALLOW_SANDBOX = ALLOW_VALUES[value]


@pytest.mark.parametrize("place", SANDBOX_PLACES)
@pytest.mark.parametrize("allow", ALLOW_VALUES)
@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
def test_sandbox_needs_debug_or_an_explicit_choice(settings, debug, allow, place):
    """DEBUG on/off x IMAGEGEN_ALLOW_SANDBOX unset/False/True/not a bool x the
    sandbox as default, choosable or absent: E026 when a usable sandbox is not
    chosen with DEBUG off (and for a value that is not a bool), W001 when it is
    chosen and is the default; nothing otherwise."""
    settings.DEBUG = debug
    _allow(settings, allow)
    found = [m for m in _checks(SANDBOX_PLACES[place], settings) if m.id.endswith(("E026", "W001"))]
    not_bool = allow in ("string", "one")
    usable = place != "absent"
    expected = set()
    if not_bool or (usable and not debug and allow != "true"):
        expected.add("imagegen.E026")
    if usable and not debug and allow == "true" and place == "default":
        expected.add("imagegen.W001")
    assert {m.id for m in found} == expected
    for message in found:
        if message.id == "imagegen.E026" and not not_bool:
            assert "'sandbox'" in message.msg and "IMAGEGEN_ALLOW_SANDBOX = True" in message.hint
            role = "the default provider" if place == "default" else "a provider editors may"
            assert role in message.msg


def _checks(imagegen, settings):
    from imagegen.checks import check_settings

    settings.IMAGEGEN = imagegen
    return check_settings()


@pytest.mark.django_db
@pytest.mark.parametrize("allow", ALLOW_VALUES)
@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
def test_sandbox_policy_at_run_time(settings, debug, allow):
    """The same family at run time: the sandbox may fetch from private hosts,
    and jobs may be made for it, only with DEBUG on or the setting True."""
    from django.core.exceptions import ValidationError

    from imagegen import services
    from imagegen.models import GenerationJob
    from imagegen.providers import sandbox_allowed

    settings.DEBUG = debug
    _allow(settings, allow)
    settings.IMAGEGEN = SANDBOX_PLACES["choosable"]
    allowed = debug or allow == "true"
    assert sandbox_allowed() is allowed
    provider = get_provider("sandbox")
    assert provider.allow_private_hosts is allowed
    assert services.fetch_policy(provider).allow_private is allowed
    # A real provider's own option is never touched.
    assert get_provider("apixo").allow_private_hosts is False
    if allowed:
        assert services.create_job(prompt="a kite", provider="sandbox").provider == "sandbox"
    else:
        with pytest.raises(ValidationError) as info:
            services.create_job(prompt="a kite", provider="sandbox")
        assert "IMAGEGEN_ALLOW_SANDBOX" in info.value.message_dict["provider"][0]
        assert not GenerationJob.objects.exists()
    assert services.create_job(prompt="a kite", provider="apixo").provider == "apixo"


@pytest.mark.django_db
@pytest.mark.parametrize("allow", ["unset", "false", "true"])
@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
def test_sandbox_results_are_not_downloaded_unless_allowed(
    settings, imagegen_settings, sandbox, debug, allow
):
    """A real sandbox job whose task finished, stored under each DEBUG x
    setting: its result on 127.0.0.1 is fetched only when the sandbox is
    allowed; otherwise the download is refused and nothing is stored."""
    from imagegen import services
    from imagegen.choices import Status
    from imagegen.models import GeneratedImage

    from .conftest import wait_until

    job = services.create_job(prompt="a lighthouse")
    assert services.submit(job.pk) == "submitted"

    def finished():
        services.poll(job.pk)
        job.refresh_from_db()
        return job.status == Status.FINALIZING

    wait_until(finished, timeout=15, interval=0.1, what="the sandbox task to finish")
    settings.DEBUG = debug
    _allow(settings, allow)
    allowed = debug or allow == "true"
    assert services.finalize(job.pk) == ("succeeded" if allowed else "failed")
    job.refresh_from_db()
    assert GeneratedImage.objects.filter(job=job).exists() is allowed
    if not allowed:
        assert job.error_code == "BAD_RESULT"
        # Refused by the policy of a public provider: web ports, public addresses.
        assert re.search(r"Port \d+ is not allowed|private or local address", job.error_message)
