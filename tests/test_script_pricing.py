"""``services.budgets.script_pricing``: the prices and budgets every generate
form's script reads (the admin's form, the run's "generate" form, Wagtail's
form, and the field dialog through ``admin.image_fields._pricing``).

The family:

- prices, by which providers are asked for: none given (every provider
  editors may choose, the default first), one given, several given; each
  resolution priced (a string) or without a configured price (``None``);
- budgets, by who asks: no limits configured; an editor (per-user limits and
  the site's); a user with ``imagegen.exceed_budget`` (the site's only);
  nobody (``None``, the site's only); amounts as plain strings for the
  script and formatted ones for people;
- the field dialog's shape: the plan's one provider, prices per resolution
  without the provider level, the same currency and budgets.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.test import RequestFactory

from imagegen.admin import image_fields
from imagegen.services.budgets import script_pricing

from .factories import make_editor, make_job, set_budgets

pytestmark = pytest.mark.django_db

SANDBOX = {"1k": "0.02", "2k": "0.04", "4k": "0.08"}
#: OpenAI with only its 1k price configured: 2k and 4k have none.
OPENAI = {"1k": "0.05", "2k": None, "4k": None}


@pytest.fixture
def two_providers(settings: Any) -> None:
    """Sandbox (the default) and OpenAI, priced at 1k only."""
    imagegen = settings.IMAGEGEN
    settings.IMAGEGEN = {
        **imagegen,
        "PROVIDERS": {**imagegen["PROVIDERS"], "openai": {"API_KEY": "k"}},
        "PRICES": {"openai": {"gpt-image-1": {"1k": "0.05"}}},
    }


@pytest.mark.parametrize(
    ("providers", "expected"),
    [
        (None, {"sandbox": SANDBOX, "openai": OPENAI}),
        (["openai"], {"openai": OPENAI}),
        (["sandbox"], {"sandbox": SANDBOX}),
        (["openai", "sandbox"], {"openai": OPENAI, "sandbox": SANDBOX}),
    ],
)
def test_prices_per_provider_and_resolution(two_providers, providers, expected):
    pricing = script_pricing(None, providers=providers)
    assert pricing["currency"] == "USD"
    assert pricing["prices"] == expected
    # The default provider comes first: the script falls back to it.
    assert list(pricing["prices"]) == list(expected)


SITE = {
    "label": "the site's monthly budget",
    "left": "49.9200",
    "limit_display": "50.00",
    "left_display": "49.92",
}
DAILY = {
    "label": "your daily budget",
    "left": "0.9200",
    "limit_display": "1.00",
    "left_display": "0.92",
}


@pytest.mark.parametrize(
    ("who", "limits", "expected"),
    [
        ("editor", {}, []),
        ("editor", {"USER_DAILY": "1.00", "SITE_MONTHLY": 50}, [DAILY, SITE]),
        ("exempt", {"USER_DAILY": "1.00", "SITE_MONTHLY": 50}, [SITE]),
        ("nobody", {"USER_DAILY": "1.00", "SITE_MONTHLY": 50}, [SITE]),
    ],
)
def test_budgets_for_who_asks(settings, django_user_model, who, limits, expected):
    set_budgets(settings, **limits)
    editor = make_editor(django_user_model)
    make_job(editor, resolution="4k")  # 0.08 spent today, by the editor
    user = {
        "editor": editor,
        "exempt": make_editor(django_user_model, "imagegen.exceed_budget"),
        "nobody": None,
    }[who]
    assert script_pricing(user)["budgets"] == expected


def test_field_dialog_reads_one_provider_s_prices_per_resolution(two_providers, settings):
    set_budgets(settings, SITE_MONTHLY=50)
    request = RequestFactory().get("/")
    request.user = None
    make_job(None, resolution="4k")
    pricing = image_fields._pricing(request, SimpleNamespace(provider="openai"))
    assert pricing == {"currency": "USD", "prices": OPENAI, "budgets": [SITE]}
