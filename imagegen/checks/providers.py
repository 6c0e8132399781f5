"""Providers: the entries of ``IMAGEGEN["PROVIDERS"]``, the selected provider, prices."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .. import conf
from ..choices import Resolution
from ..exceptions import ImagegenConfigurationError
from ..providers import Provider, get_provider, is_sandbox, sandbox_allowed
from .hints import did_you_mean


def check() -> list[CheckMessage]:
    entries = conf.get_setting("PROVIDERS")
    malformed = _check_entries_are_dicts(entries)
    if malformed:
        return malformed
    errors = _check_selected() + _check_sandbox()
    selected = conf.get_setting("PROVIDER")
    for name, options in entries.items():
        try:
            provider = get_provider(name)
        except ImagegenConfigurationError as exc:
            if name != selected:  # the selected one is reported above
                errors.append(Error(str(exc), id="imagegen.E004"))
            continue
        errors += _check_option_names(provider, options)
    return errors


def _check_entries_are_dicts(entries: object) -> list[CheckMessage]:
    if not isinstance(entries, dict):
        return [
            Error(
                "IMAGEGEN['PROVIDERS'] must be a dict: {name: {option: value}}.",
                hint="For example {'apixo': {'API_KEY': os.environ['APIXO_API_KEY']}}.",
                id="imagegen.E021",
            )
        ]
    return [
        Error(
            f"IMAGEGEN['PROVIDERS'][{name!r}] must be a dict of options.",
            hint="For example {'API_KEY': os.environ['APIXO_API_KEY']}.",
            id="imagegen.E021",
        )
        for name, options in entries.items()
        if not isinstance(options, dict)
    ]


def _check_option_names(provider: Provider, options: dict) -> list[CheckMessage]:
    """An option the provider does not read is a typo that would be ignored."""
    known = type(provider).known_options()
    if known is None:
        return []
    return [
        Error(
            f"IMAGEGEN['PROVIDERS'][{provider.name!r}][{key!r}] is not an option of "
            f"{type(provider).__name__}.",
            hint=f"{did_you_mean(key, known)}Its options: {', '.join(sorted(known))}.",
            id="imagegen.E021",
        )
        for key in sorted(set(options) - known, key=str)
    ]


def _check_selected() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    try:
        provider = get_provider()
    except ImagegenConfigurationError as exc:
        return [Error(str(exc), id="imagegen.E004")]
    options = provider.options
    # The sandbox's key is a placeholder; its own rules: _check_sandbox.
    if not is_sandbox(provider) and "API_KEY" in options and not options.get("API_KEY"):
        errors.append(
            Error(
                f"IMAGEGEN['PROVIDERS'][{provider.name!r}]['API_KEY'] is not set.",
                hint="Set it from an environment variable, e.g. os.environ['APIXO_API_KEY'].",
                id="imagegen.E005",
            )
        )
    base = options.get("BASE_URL")
    if base is not None and urlsplit(str(base)).scheme not in ("http", "https"):
        errors.append(
            Error(
                f"IMAGEGEN['PROVIDERS'][{provider.name!r}]['BASE_URL'] must be an http(s) URL.",
                id="imagegen.E006",
            )
        )
    prices = conf.get_setting("PRICES")
    if not isinstance(prices, dict):
        errors.append(Error("IMAGEGEN['PRICES'] must be a dict.", id="imagegen.E007"))
    elif not all(
        conf.price(provider.name, provider.model, r) is not None for r in Resolution.values
    ):
        errors.append(
            Warning(
                f"No price configured for {provider.name}/{provider.model}; costs show as unknown.",
                hint="Add IMAGEGEN['PRICES'][provider][model][resolution].",
                id="imagegen.W002",
            )
        )
    return errors


def _check_sandbox() -> list[CheckMessage]:
    """The local sandbox among the providers jobs may use, with DEBUG off: an
    error unless the site chose it with ``IMAGEGEN_ALLOW_SANDBOX = True``
    (E026), else a reminder when it is the default provider (W001)."""
    allowed = getattr(settings, "IMAGEGEN_ALLOW_SANDBOX", False)
    if not isinstance(allowed, bool):
        return [
            Error(
                f"IMAGEGEN_ALLOW_SANDBOX must be True or False, not {allowed!r}.",
                hint="True only on development, staging or demo sites that use the sandbox.",
                id="imagegen.E026",
            )
        ]
    if settings.DEBUG:
        return []
    try:
        choosable = conf.configured_providers()
    except ImagegenConfigurationError:
        return []  # an entry that cannot load: E004 first
    selected = conf.get_setting("PROVIDER")
    errors: list[CheckMessage] = []
    for name in choosable:
        try:
            sandbox = is_sandbox(get_provider(name))
        except ImagegenConfigurationError:
            continue  # E004
        if not sandbox:
            continue
        role = "the default provider" if name == selected else "a provider editors may choose"
        if sandbox_allowed():
            if name == selected:
                errors.append(
                    Warning(
                        "imagegen uses the local sandbox provider with DEBUG off "
                        "(IMAGEGEN_ALLOW_SANDBOX is True).",
                        hint="Set IMAGEGEN['PROVIDER'] = 'apixo' and an API key for real images.",
                        id="imagegen.W001",
                    )
                )
            continue
        errors.append(
            Error(
                f"The local sandbox provider {name!r} is {role} while DEBUG is off.",
                hint=(
                    "The sandbox is for development: its results come from 127.0.0.1. Set "
                    "IMAGEGEN['PROVIDER'] to a real provider and remove "
                    f"{name!r} from IMAGEGEN['PROVIDERS']; a staging or demo site that "
                    "means to use it sets IMAGEGEN_ALLOW_SANDBOX = True (a Django setting)."
                ),
                id="imagegen.E026",
            )
        )
    return errors
