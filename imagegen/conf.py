"""imagegen's settings: one ``IMAGEGEN`` dict in the Django settings.

Every read goes through :func:`get_setting` (or :func:`provider_options`), so
``override_settings`` works and nothing is captured at import time. Missing
keys fall back to :data:`DEFAULTS`; the keys are documented in
``docs/settings.md`` and validated by the system checks in ``checks.py``.
"""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from typing import Any

from django.conf import settings

from .exceptions import ImagegenConfigurationError

#: The sandbox's default address, as started by ``manage.py imagegen sandbox``.
SANDBOX_DEFAULT_URL = "http://127.0.0.1:8765/api/v1"

DEFAULTS: dict[str, Any] = {
    # Name of the entry of PROVIDERS that new jobs use.
    "PROVIDER": "sandbox",
    # Per-provider options, merged over PROVIDER_DEFAULTS[name] when present.
    "PROVIDERS": {},
    # Public origin (scheme://host[:port]) the provider calls back. None means
    # no callbacks: jobs complete by polling only.
    "CALLBACK_BASE_URL": None,
    # STORAGES alias for result files; None means "imagegen" if defined, else "default".
    "STORAGE_ALIAS": None,
    "ASSET_ADAPTER": "imagegen.adapters.GeneratedImageAdapter",
    # imagegen.contrib.wagtail's adapter: the collection of generated images
    # (None: the root; an id; or the name of a collection under the root, made
    # if missing) and the tags every generated image gets.
    "WAGTAIL_COLLECTION": None,
    "WAGTAIL_TAGS": ("imagegen",),
    # imagegen.contrib.filer's adapter: the filer folder of generated images
    # (None: none, filer's unsorted uploads; an id; or a path of folder names
    # separated by "/", made if missing).
    "FILER_FOLDER": "Generated images",
    # Generable model fields, {"app_label.Model.field": {options}} (docs/fields.md);
    # ModelAdmin.imagegen_fields declares them too.
    "IMAGE_FIELDS": {},
    # Seconds from creation until an unfinished job expires.
    "JOB_TIMEOUT": 600,
    "MAX_DOWNLOAD_BYTES": 64 * 1024 * 1024,
    "MAX_IMAGE_PIXELS": 40_000_000,
    "DOWNLOAD_TIMEOUT": 120,
    # Extra result hosts allowed for every provider (each provider adds its own).
    "ALLOWED_RESULT_HOSTS": (),
    "ALLOW_PRIVATE_HOSTS": False,
    # {provider: {model: {resolution: price}}}; merged over provider defaults.
    "PRICES": {},
    "CURRENCY": "USD",
    # Spending limits in CURRENCY: USER_DAILY, USER_MONTHLY, SITE_MONTHLY (None: no limit).
    "BUDGETS": {},
    # Largest callback body accepted, in bytes.
    "MAX_CALLBACK_BYTES": 256 * 1024,
    # Bytes of body kept of a refused callback (wrong token, unknown job,
    # malformed, another job's task, too large), and days a delivery record
    # is kept (refused, and all others); the sweeper purges older ones.
    "REFUSED_BODY_BYTES": 2048,
    "REFUSED_DELIVERY_RETENTION_DAYS": 30,
    "DELIVERY_RETENTION_DAYS": 180,
    # Most arrays and objects nested in one another in JSON from outside
    # (callbacks, provider answers, API bodies); deeper is malformed.
    "MAX_JSON_DEPTH": 32,
    # Most result URLs one provider answer may carry; more is malformed.
    "MAX_RESULT_URLS": 10,
    # Store results that arrive after a job expired (the provider charged for
    # them) instead of only recording the late callback.
    "ACCEPT_LATE_RESULTS": False,
    # Confirm every callback through the provider's status API before trusting it.
    "CONFIRM_CALLBACKS": False,
    # Polling without callbacks: POLL_BUDGET polls spread over the provider's
    # latency range, each (1 + POLL_GROWTH) times later than the last; past the
    # range, intervals of POLL_GROWTH x the time waited, between the bounds.
    "POLL_BUDGET": 6,
    "POLL_GROWTH": 0.2,
    "POLL_MIN_INTERVAL": 2.0,
    "POLL_MAX_INTERVAL": 30.0,
    # How long after the expected latency a job waits for its callback before
    # the first poll, as a fraction of the latency range's upper bound.
    "CALLBACK_GRACE": 0.25,
    # Seconds a queued job waits for its submit task before the sweeper re-enqueues it.
    "SUBMIT_GRACE": 30,
    "SUBMIT_MAX_ATTEMPTS": 5,
    # Seconds a submitting worker's lease lasts unless renewed: the worker
    # renews it while the provider call runs (up to the call's timeout), so a
    # worker that died mid-submit is found this long after its last renewal.
    "SUBMIT_LEASE": 20,
    # Seconds a finalize worker's lease lasts unless renewed: the worker renews
    # it every quarter of that while it works, so a dead worker's job is
    # handed to another this long after its last renewal.
    "FINALIZE_LEASE": 20,
    "FINALIZE_MAX_ATTEMPTS": 5,
    # Most jobs of a provider in flight at once, {provider: n} (no entry: no
    # cap); the others wait queued for a slot (services.slots).
    "MAX_IN_FLIGHT": {},
    # Jobs the sweeper claims per run.
    "SWEEP_BATCH_SIZE": 500,
    # Longest Celery countdown imagegen uses (seconds); long waits go through the sweeper.
    "MAX_COUNTDOWN": 60,
    # Seconds a discarded image can be restored ("Undo") before its file is deleted.
    "DISCARD_UNDO_SECONDS": 30,
    # Seconds a request for a preview being made by another request waits
    # for it before answering with the original image instead.
    "PREVIEW_WAIT": 2.0,
    # JSON API (docs/api.md): jobs per page by default, and the most a client may ask for.
    "API_PAGE_SIZE": 20,
    "API_MAX_PAGE_SIZE": 100,
    # Outbound webhooks (docs/webhooks.md): connect and read timeout of one
    # delivery, attempts before a delivery fails, seconds to wait after the
    # 1st, 2nd... failed attempt (the last entry repeats), and whether
    # endpoints may be on private or loopback addresses.
    "WEBHOOK_TIMEOUT": 10,
    "WEBHOOK_MAX_ATTEMPTS": 8,
    "WEBHOOK_RETRY_SCHEDULE": (5, 300, 1800, 7200, 18000, 36000, 36000),
    "WEBHOOK_ALLOW_PRIVATE_HOSTS": False,
    # Seconds an endpoint's previous secret still signs deliveries (alongside
    # the new one) after a rotation, so receivers can switch without a gap.
    "WEBHOOK_SECRET_GRACE": 24 * 3600,
    # Content Credentials (docs/provenance.md): the identity imagegen signs
    # C2PA manifests with (paths of PEM files, or the PEM texts; None: no
    # signing), extra trusted roots when reading them, and whether the signed
    # job facts include the prompt (prompts can be confidential).
    "C2PA_SIGNING_CERTIFICATES": None,
    "C2PA_SIGNING_KEY": None,
    "C2PA_TRUST_ANCHORS": None,
    "C2PA_INCLUDE_PROMPT": False,
    # Drafting alt text after finalize and prompts from an object's text
    # (docs/settings.md): {"BACKEND": dotted path, "OPTIONS": {...}}, None
    # (off), or "auto": the sandbox describer when PROVIDER is the sandbox
    # (and the openai package is installed).
    "DESCRIBER": "auto",
    # Approving an image or attaching it to a field needs alt text or the
    # "decorative" mark.
    "REQUIRE_ALT_TEXT": False,
}

#: The describer "auto" picks when the default provider is the sandbox.
SANDBOX_DESCRIBER = "imagegen.describers.sandbox.SandboxDescriber"

#: Built-in provider entries. ``sandbox`` is the APIXO client pointed at the
#: local sandbox: the production code path with a local server behind it.
PROVIDER_DEFAULTS: dict[str, dict[str, Any]] = {
    "apixo": {
        "CLASS": "imagegen.providers.apixo.APIXOProvider",
        "BASE_URL": "https://api.apixo.ai/api/v1",
        "API_KEY": None,
        "MODEL": "gpt-image-2",
        "ALLOWED_RESULT_HOSTS": ("*.apixo.ai",),
        "ALLOW_PRIVATE_HOSTS": False,
        "TIMEOUT": 30.0,
    },
    "openai": {
        "CLASS": "imagegen.providers.openai.OpenAIImagesProvider",
        "BASE_URL": "https://api.openai.com/v1",
        "API_KEY": None,
        "MODEL": "gpt-image-1",
        # One synchronous call generates the image: minutes, not seconds.
        "TIMEOUT": 300.0,
        "QUALITY": "auto",
        "BACKGROUND": "auto",
        "OUTPUT_FORMAT": "png",
        "OUTPUT_COMPRESSION": None,
        "MODERATION": None,
        "INPUT_FIDELITY": None,
        "ORGANIZATION": None,
        "PROJECT": None,
        "SIZES": {},
        # Results come as base64; URL results only from hosts listed here.
        "ALLOWED_RESULT_HOSTS": (),
        "ALLOW_PRIVATE_HOSTS": False,
        # Reference images are downloaded by imagegen and uploaded to OpenAI.
        "REFERENCE_ALLOWED_HOSTS": None,
        "MAX_REFERENCE_BYTES": 50 * 1024 * 1024,
        "REFERENCE_TIMEOUT": 60.0,
    },
    "sandbox": {
        "CLASS": "imagegen.providers.apixo.APIXOProvider",
        "BASE_URL": SANDBOX_DEFAULT_URL,
        "API_KEY": "sandbox",
        "MODEL": "gpt-image-2",
        # None: results may come from any host the sandbox names (it is local).
        "ALLOWED_RESULT_HOSTS": None,
        "ALLOW_PRIVATE_HOSTS": True,
        "TIMEOUT": 10.0,
        # The sandbox answers in 2-4 s by default (``--latency``); polls and
        # the wait for a callback follow its time scale, not APIXO's minutes.
        "LATENCY": {"1k": (1.0, 6.0), "2k": (1.0, 6.0), "4k": (1.0, 6.0)},
        "SANDBOX": True,
    },
}

#: Published APIXO prices per image, in USD.
DEFAULT_PRICES: dict[str, dict[str, str]] = {
    "gpt-image-2": {"1k": "0.02", "2k": "0.04", "4k": "0.08"},
}


def get_setting(name: str) -> Any:
    """Return ``settings.IMAGEGEN[name]``, or its default.

    Raises :class:`ImagegenConfigurationError` for a key imagegen does not know,
    which catches typos in calling code early.
    """
    if name not in DEFAULTS:
        raise ImagegenConfigurationError(f"Unknown imagegen setting IMAGEGEN[{name!r}].")
    return user_settings().get(name, DEFAULTS[name])


def user_settings() -> dict[str, Any]:
    """``settings.IMAGEGEN`` as given (empty when unset).

    Raises :class:`ImagegenConfigurationError` when it is not a dict (system
    check ``imagegen.E001``).
    """
    user = getattr(settings, "IMAGEGEN", None)
    if user is None:
        return {}
    if not isinstance(user, dict):
        raise ImagegenConfigurationError(
            f"settings.IMAGEGEN must be a dict, not {type(user).__name__}."
        )
    return user


def provider_names() -> list[str]:
    """Names of every configured provider (built-in and user-defined)."""
    return sorted(set(PROVIDER_DEFAULTS) | set(get_setting("PROVIDERS")))


def configured_providers() -> list[str]:
    """Providers editors may choose: the default one first, then the entries of
    ``PROVIDERS`` that are usable (an entry with an empty ``API_KEY`` is not)."""
    names = [get_setting("PROVIDER")]
    for name in sorted(get_setting("PROVIDERS")):
        options = provider_options(name)
        if name not in names and not ("API_KEY" in options and not options["API_KEY"]):
            names.append(name)
    return names


def provider_options(name: str) -> dict[str, Any]:
    """Options of provider ``name``: the user's ``PROVIDERS[name]`` over the built-in defaults."""
    providers = get_setting("PROVIDERS")
    if not isinstance(providers, dict):
        raise ImagegenConfigurationError(
            "IMAGEGEN['PROVIDERS'] must be a dict of {name: {option: value}}."
        )
    user = providers.get(name)
    if user is not None and not isinstance(user, dict):
        raise ImagegenConfigurationError(f"IMAGEGEN['PROVIDERS'][{name!r}] must be a dict.")
    if user is None and name not in PROVIDER_DEFAULTS:
        raise ImagegenConfigurationError(
            f"Unknown imagegen provider {name!r}: add it to IMAGEGEN['PROVIDERS'] "
            f"or use one of {', '.join(provider_names())}."
        )
    options = dict(PROVIDER_DEFAULTS.get(name, {}))
    options.update(user or {})
    if "CLASS" not in options:
        raise ImagegenConfigurationError(
            f"IMAGEGEN['PROVIDERS'][{name!r}] needs a 'CLASS' (dotted path of a Provider subclass)."
        )
    return options


def describer_config() -> dict[str, Any] | None:
    """``IMAGEGEN["DESCRIBER"]`` as ``{"BACKEND": path, "OPTIONS": dict}``, or
    None when drafting is off. ``"auto"`` (the default) is the sandbox
    describer when the default provider is a sandbox entry and the
    ``openai`` package is installed, else off.

    Raises :class:`ImagegenConfigurationError` for any other shape (system
    check ``imagegen.E036``).
    """
    value = get_setting("DESCRIBER")
    if value is None:
        return None
    if value == "auto":
        try:
            sandbox = bool(provider_options(get_setting("PROVIDER")).get("SANDBOX"))
        except ImagegenConfigurationError:
            sandbox = False  # the provider checks report it
        if not sandbox or importlib.util.find_spec("openai") is None:
            return None
        return {"BACKEND": SANDBOX_DESCRIBER, "OPTIONS": {}}
    if not isinstance(value, dict) or not isinstance(value.get("BACKEND"), str):
        raise ImagegenConfigurationError(
            "IMAGEGEN['DESCRIBER'] must be None, 'auto' or a dict "
            "{'BACKEND': dotted path of a Describer, 'OPTIONS': {...}}."
        )
    unknown = set(value) - {"BACKEND", "OPTIONS"}
    if unknown:
        raise ImagegenConfigurationError(
            f"IMAGEGEN['DESCRIBER'] has keys other than BACKEND and OPTIONS: "
            f"{', '.join(sorted(map(str, unknown)))}."
        )
    options = value.get("OPTIONS") or {}
    if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
        raise ImagegenConfigurationError(
            "IMAGEGEN['DESCRIBER']['OPTIONS'] must be a dict of {option: value}."
        )
    return {"BACKEND": value["BACKEND"], "OPTIONS": dict(options)}


def price(provider: str, model: str, resolution: str) -> Decimal | None:
    """Price of one image, or None when no price is configured."""
    prices = get_setting("PRICES").get(provider, {}).get(model)
    if prices is None:
        prices = DEFAULT_PRICES.get(model, {})
    value = prices.get(resolution)
    return None if value is None else Decimal(str(value))
