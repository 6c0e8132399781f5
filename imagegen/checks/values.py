"""The plain values of ``IMAGEGEN``: known keys, numbers, budgets, webhooks, the API."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .. import conf
from .hints import did_you_mean

_POSITIVE = (
    "JOB_TIMEOUT",
    "MAX_DOWNLOAD_BYTES",
    "MAX_IMAGE_PIXELS",
    "DOWNLOAD_TIMEOUT",
    "MAX_CALLBACK_BYTES",
    "REFUSED_BODY_BYTES",
    "REFUSED_DELIVERY_RETENTION_DAYS",
    "DELIVERY_RETENTION_DAYS",
    "MAX_JSON_DEPTH",
    "MAX_RESULT_URLS",
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


def check() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key in sorted(set(conf.user_settings()) - set(conf.DEFAULTS), key=str):
        errors.append(
            Error(
                f"IMAGEGEN[{key!r}] is not an imagegen setting.",
                hint=f"{did_you_mean(key, conf.DEFAULTS)}See docs/settings.md for the settings.",
                id="imagegen.E002",
            )
        )
    for key in _POSITIVE:
        value = conf.get_setting(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            errors.append(
                Error(f"IMAGEGEN[{key!r}] must be a positive number.", id="imagegen.E003")
            )
    return [
        *errors,
        *_check_budgets(),
        *_check_webhooks(),
        *_check_api(),
        *_check_max_in_flight(),
        *_check_discard_undo(),
    ]


def _check_discard_undo() -> list[CheckMessage]:
    """``DISCARD_UNDO_SECONDS``: 0 (no undo) up to a day; a discarded
    image's file is kept that long (imagegen.services.reviews)."""
    value = conf.get_setting("DISCARD_UNDO_SECONDS")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 86400:
        return [
            Error(
                "IMAGEGEN['DISCARD_UNDO_SECONDS'] must be a whole number of seconds "
                f"from 0 to 86400, not {value!r}.",
                hint="The time a discard can be undone; 0 deletes the files at once.",
                id="imagegen.E035",
            )
        ]
    return []


def _check_budgets() -> list[CheckMessage]:
    from ..services.budgets import LIMITS

    budgets = conf.get_setting("BUDGETS")
    if not isinstance(budgets, dict):
        return [Error("IMAGEGEN['BUDGETS'] must be a dict.", id="imagegen.E010")]
    errors: list[CheckMessage] = []
    for key, value in budgets.items():
        if key not in LIMITS:
            errors.append(
                Error(
                    f"IMAGEGEN['BUDGETS'][{key!r}] is not a budget.",
                    hint=f"{did_you_mean(key, LIMITS)}Use {', '.join(LIMITS)}.",
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


def _check_max_in_flight() -> list[CheckMessage]:
    """The concurrency cap: {provider: a whole number from 1}, for known providers."""
    caps = conf.get_setting("MAX_IN_FLIGHT")
    if not isinstance(caps, dict):
        return [
            Error(
                "IMAGEGEN['MAX_IN_FLIGHT'] must be a dict of {provider: jobs at once}.",
                hint="For example {'apixo': 20}.",
                id="imagegen.E033",
            )
        ]
    errors: list[CheckMessage] = []
    names = conf.provider_names()
    for name, value in caps.items():
        if name not in names:
            errors.append(
                Error(
                    f"IMAGEGEN['MAX_IN_FLIGHT'][{name!r}]: there is no provider {name!r}.",
                    hint=f"{did_you_mean(str(name), names)}Providers: {', '.join(names)}.",
                    id="imagegen.E033",
                )
            )
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(
                Error(
                    f"IMAGEGEN['MAX_IN_FLIGHT'][{name!r}] must be a whole number from 1, "
                    f"not {value!r}.",
                    id="imagegen.E033",
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


#: The longest grace period of a rotated webhook secret (seconds).
MAX_SECRET_GRACE = 366 * 24 * 3600


def _check_webhooks() -> list[CheckMessage]:
    from ..webhooks.delivery import TASK_SOFT_TIME_LIMIT

    errors: list[CheckMessage] = []
    schedule = conf.get_setting("WEBHOOK_RETRY_SCHEDULE")
    if (
        not isinstance(schedule, (list, tuple))
        or not schedule
        or not all(non_negative_number(v) for v in schedule)
    ):
        errors.append(
            Error(
                "IMAGEGEN['WEBHOOK_RETRY_SCHEDULE'] must be a non-empty list of seconds "
                "(non-negative numbers).",
                hint="For example (5, 300, 1800, 7200, 18000, 36000, 36000).",
                id="imagegen.E011",
            )
        )
    grace = conf.get_setting("WEBHOOK_SECRET_GRACE")
    if not non_negative_number(grace) or grace > MAX_SECRET_GRACE:
        errors.append(
            Error(
                "IMAGEGEN['WEBHOOK_SECRET_GRACE'] must be a number of seconds from 0 to "
                f"{MAX_SECRET_GRACE} (a year).",
                hint="For example 86400 (a day); 0 ends the previous secret at rotation.",
                id="imagegen.E025",
            )
        )
    timeout = conf.get_setting("WEBHOOK_TIMEOUT")
    if non_negative_number(timeout) and 4 * timeout >= TASK_SOFT_TIME_LIMIT:
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


def non_negative_number(value: Any) -> bool:
    """A finite int or float, at least 0 (not a bool)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return math.isfinite(value) and value >= 0


def _check_api() -> list[CheckMessage]:
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
