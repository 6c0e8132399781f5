"""System checks for the ``IMAGEGEN`` setting (ids ``imagegen.E0xx`` / ``W0xx``)."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from . import conf
from .choices import Resolution
from .exceptions import ImagegenConfigurationError

_POSITIVE = (
    "JOB_TIMEOUT",
    "MAX_DOWNLOAD_BYTES",
    "MAX_IMAGE_PIXELS",
    "DOWNLOAD_TIMEOUT",
    "MAX_CALLBACK_BYTES",
    "POLL_BUDGET",
    "POLL_GROWTH",
    "POLL_MIN_INTERVAL",
    "POLL_MAX_INTERVAL",
    "SUBMIT_GRACE",
    "SUBMIT_MAX_ATTEMPTS",
    "SUBMIT_LEASE",
    "FINALIZE_LEASE",
    "FINALIZE_MAX_ATTEMPTS",
    "SWEEP_BATCH_SIZE",
    "MAX_COUNTDOWN",
    "WEBHOOK_TIMEOUT",
    "WEBHOOK_MAX_ATTEMPTS",
)


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list:
    errors: list = []
    user = getattr(settings, "IMAGEGEN", {}) or {}
    if not isinstance(user, dict):
        return [Error("IMAGEGEN must be a dict.", id="imagegen.E001")]
    for key in sorted(set(user) - set(conf.DEFAULTS)):
        errors.append(
            Error(
                f"IMAGEGEN[{key!r}] is not an imagegen setting.",
                hint="See docs/settings.md for the list of settings.",
                id="imagegen.E002",
            )
        )
    for key in _POSITIVE:
        value = conf.get_setting(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            errors.append(
                Error(f"IMAGEGEN[{key!r}] must be a positive number.", id="imagegen.E003")
            )
    errors += _check_providers()
    errors += _check_callback_base()
    errors += _check_countdowns()
    errors += _check_budgets()
    errors += _check_webhooks()
    errors += _check_api()
    return errors


def _check_budgets() -> list:
    from .services.budgets import LIMITS

    budgets = conf.get_setting("BUDGETS")
    if not isinstance(budgets, dict):
        return [Error("IMAGEGEN['BUDGETS'] must be a dict.", id="imagegen.E010")]
    errors = []
    for key, value in budgets.items():
        if key not in LIMITS:
            errors.append(
                Error(
                    f"IMAGEGEN['BUDGETS'][{key!r}] is not a budget.",
                    hint=f"Use {', '.join(LIMITS)}.",
                    id="imagegen.E010",
                )
            )
        elif value is not None and not _non_negative_amount(value):
            errors.append(
                Error(
                    f"IMAGEGEN['BUDGETS'][{key!r}] must be an amount (e.g. \"25.00\") or None.",
                    id="imagegen.E010",
                )
            )
    return errors


def _non_negative_amount(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return False
    return amount.is_finite() and amount >= 0


def _check_providers() -> list:
    from .providers import get_provider

    errors: list = []
    try:
        provider = get_provider()
    except ImagegenConfigurationError as exc:
        return [Error(str(exc), id="imagegen.E004")]
    options = provider.options
    if options.get("SANDBOX"):
        if not settings.DEBUG:
            errors.append(
                Warning(
                    "imagegen uses the local sandbox provider with DEBUG off.",
                    hint="Set IMAGEGEN['PROVIDER'] = 'apixo' and an API key for real images.",
                    id="imagegen.W001",
                )
            )
    elif "API_KEY" in options and not options.get("API_KEY"):
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


def _check_callback_base() -> list:
    base = conf.get_setting("CALLBACK_BASE_URL")
    if not base:
        return [
            Warning(
                "IMAGEGEN['CALLBACK_BASE_URL'] is not set: jobs complete by polling only.",
                hint="Set it to the public https origin of this site to receive callbacks.",
                id="imagegen.W003",
            )
        ]
    parts = urlsplit(str(base))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [
            Error(
                "IMAGEGEN['CALLBACK_BASE_URL'] must be an absolute http(s) URL.",
                id="imagegen.E008",
            )
        ]
    return []


def _check_countdowns() -> list:
    """Redis and SQS redeliver a task whose countdown outlives the visibility
    timeout; imagegen's longest countdown must stay well inside it."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    visibility = options.get("visibility_timeout", 3600)
    longest = float(conf.get_setting("MAX_COUNTDOWN")) + 300  # plus the longest task run
    if longest * 2 > visibility:
        return [
            Error(
                f"IMAGEGEN['MAX_COUNTDOWN'] plus task run time ({longest:.0f}s) must be under "
                f"half the broker visibility timeout ({visibility}s).",
                hint="Lower MAX_COUNTDOWN or raise broker_transport_options['visibility_timeout'].",
                id="imagegen.E009",
            )
        ]
    return []


def _check_webhooks() -> list:
    from .webhooks.delivery import TASK_SOFT_TIME_LIMIT

    errors: list = []
    schedule = conf.get_setting("WEBHOOK_RETRY_SCHEDULE")
    if (
        not isinstance(schedule, (list, tuple))
        or not schedule
        or not all(_non_negative_number(v) for v in schedule)
    ):
        errors.append(
            Error(
                "IMAGEGEN['WEBHOOK_RETRY_SCHEDULE'] must be a non-empty list of seconds "
                "(non-negative numbers).",
                hint="For example (5, 300, 1800, 7200, 18000, 36000, 36000).",
                id="imagegen.E011",
            )
        )
    timeout = conf.get_setting("WEBHOOK_TIMEOUT")
    if _non_negative_number(timeout) and 4 * timeout >= TASK_SOFT_TIME_LIMIT:
        errors.append(
            Error(
                f"IMAGEGEN['WEBHOOK_TIMEOUT'] ({timeout}s) is too long: one delivery can take "
                f"4 times it, over the delivery task's {TASK_SOFT_TIME_LIMIT}s time limit.",
                hint=f"Use at most {(TASK_SOFT_TIME_LIMIT - 1) // 4} seconds.",
                id="imagegen.E012",
            )
        )
    if conf.get_setting("WEBHOOK_ALLOW_PRIVATE_HOSTS") and not settings.DEBUG:
        errors.append(
            Warning(
                "IMAGEGEN['WEBHOOK_ALLOW_PRIVATE_HOSTS'] is on with DEBUG off: outbound "
                "webhooks may be sent to private and loopback addresses.",
                hint="Turn it off unless the receivers really are on this network.",
                id="imagegen.W004",
            )
        )
    return errors


def _non_negative_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return math.isfinite(value) and value >= 0


def _check_api() -> list:
    size = conf.get_setting("API_PAGE_SIZE")
    largest = conf.get_setting("API_MAX_PAGE_SIZE")
    whole = [v for v in (size, largest) if isinstance(v, int) and not isinstance(v, bool)]
    if len(whole) < 2 or min(whole) < 1 or size > largest:
        return [
            Error(
                "IMAGEGEN['API_PAGE_SIZE'] and IMAGEGEN['API_MAX_PAGE_SIZE'] must be whole "
                "numbers of at least 1, the page size no larger than the maximum.",
                hint="The defaults are 20 and 100.",
                id="imagegen.E013",
            )
        ]
    return []
