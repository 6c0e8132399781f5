"""The doctor's provider check: each provider editors may choose answers
and accepts its key; APIXO's balance covers at least one 4K image."""

from __future__ import annotations

from collections.abc import Iterator

from .. import conf
from ..exceptions import ImagegenConfigurationError, PermanentError, ProviderError
from ..providers import get_provider
from .findings import FAIL, INFO, OK, WARN, Finding


def check_providers(timeout: float) -> Iterator[Finding]:
    try:
        names = conf.configured_providers()
    except ImagegenConfigurationError as exc:
        yield Finding("provider", FAIL, str(exc))
        return
    for name in names:
        yield check_provider(name, timeout)


def check_provider(name: str, timeout: float) -> Finding:
    check = f"provider {name}"
    try:
        provider = get_provider(name)
    except ImagegenConfigurationError as exc:
        return Finding(check, FAIL, str(exc))
    setting = f"IMAGEGEN['PROVIDERS'][{name!r}]['API_KEY']"
    if "API_KEY" in provider.options and not provider.options["API_KEY"]:
        return Finding(check, FAIL, f"no API key: set {setting}.")
    where = getattr(provider, "base_url", "") or type(provider).__name__
    try:
        status = provider.account_status(timeout=timeout)
    except PermanentError as exc:
        if exc.status_code == 401:
            return Finding(check, FAIL, f"API key refused by {where}: set a valid {setting}.")
        return Finding(check, FAIL, f"{where}: {exc.message}")
    except ProviderError as exc:
        fix = (
            "start the sandbox (`manage.py imagegen sandbox`) or fix its BASE_URL"
            if provider.options.get("SANDBOX")
            else f"check IMAGEGEN['PROVIDERS'][{name!r}]['BASE_URL'] and the network"
        )
        return Finding(check, FAIL, f"{where}: {exc.message}: {fix}.")
    if status is None:
        return Finding(check, INFO, f"not checked: {type(provider).__name__} has no cheap request.")
    text = f"{where} answered and accepted the key"
    if status.balance is None:
        return Finding(check, OK, text + ".")
    currency = status.currency or conf.get_setting("CURRENCY")
    text += f"; balance {status.balance} {currency}"
    price = conf.price(name, provider.model, "4k")
    if price is not None and currency == conf.get_setting("CURRENCY") and status.balance < price:
        return Finding(
            check,
            WARN,
            f"{text}, less than one 4K image ({price} {currency}): top up the account, "
            "or jobs fail with 'insufficient balance'.",
        )
    return Finding(check, OK, text + ".")
