"""System checks of IMAGEGEN's values (the other concerns: tests/test_checks_*.py) and
the settings accessor."""

from __future__ import annotations

import pytest

from imagegen import conf
from imagegen.checks import check_settings
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.providers import get_provider


def ids(settings_value, settings, **extra):
    settings.IMAGEGEN = settings_value
    for key, value in extra.items():
        setattr(settings, key, value)
    return {message.id for message in check_settings()}


def test_defaults_warn_about_sandbox_and_polling_only(settings):
    settings.DEBUG = False
    found = ids({}, settings)
    assert {"imagegen.W001", "imagegen.W003"} <= found
    assert not any(i.startswith("imagegen.E") for i in found)


@pytest.mark.parametrize("value", [["PROVIDER", "sandbox"], "sandbox", 1, (("PROVIDER", "x"),)])
def test_imagegen_not_a_dict_is_the_one_error(settings, value):
    """Every other check reads IMAGEGEN: E001 alone, and reading a setting
    says what is wrong instead of failing on the list or string."""
    assert ids(value, settings) == {"imagegen.E001"}
    with pytest.raises(ImagegenConfigurationError, match="IMAGEGEN must be a dict"):
        conf.get_setting("PROVIDER")


@pytest.mark.parametrize(
    ("key", "meant"),
    [("JOB_TIMOUT", "JOB_TIMEOUT"), ("callback_base_url", "CALLBACK_BASE_URL"), ("XYZZY", None)],
)
def test_unknown_key_is_an_error(settings, key, meant):
    settings.IMAGEGEN = {key: 5}
    [message] = [m for m in check_settings() if m.id == "imagegen.E002"]
    assert repr(key) in message.msg
    assert (
        (f"Did you mean {meant!r}?" in message.hint)
        if meant
        else "Did you mean" not in message.hint
    )


@pytest.mark.parametrize("value", [0, -1, "600", None, True])
def test_non_positive_number_is_an_error(settings, value):
    assert "imagegen.E003" in ids({"JOB_TIMEOUT": value}, settings)


def test_unknown_provider_is_an_error(settings):
    assert "imagegen.E004" in ids({"PROVIDER": "nope"}, settings)


def test_real_provider_without_key_is_an_error(settings):
    assert "imagegen.E005" in ids({"PROVIDER": "apixo"}, settings)
    found = ids({"PROVIDER": "apixo", "PROVIDERS": {"apixo": {"API_KEY": "k"}}}, settings)
    assert "imagegen.E005" not in found


def test_bad_callback_base_is_an_error(settings):
    assert "imagegen.E008" in ids({"CALLBACK_BASE_URL": "example.com"}, settings)
    assert "imagegen.E008" not in ids({"CALLBACK_BASE_URL": "https://example.com"}, settings)


def test_unknown_setting_name_raises_configuration_error():
    with pytest.raises(ImagegenConfigurationError):
        conf.get_setting("NOT_A_SETTING")


def test_provider_options_merge_over_defaults(settings):
    settings.IMAGEGEN = {"PROVIDERS": {"apixo": {"API_KEY": "secret-key"}}}
    provider = get_provider("apixo")
    assert provider.base_url == "https://api.apixo.ai/api/v1"
    assert provider.model == "gpt-image-2"
    assert "secret-key" not in repr(provider)


def test_custom_provider_needs_a_class(settings):
    settings.IMAGEGEN = {"PROVIDERS": {"mine": {"BASE_URL": "https://x"}}}
    with pytest.raises(ImagegenConfigurationError, match="CLASS"):
        get_provider("mine")
    settings.IMAGEGEN = {"PROVIDERS": {"mine": {"CLASS": "builtins.dict"}}}
    with pytest.raises(ImagegenConfigurationError, match="subclass"):
        get_provider("mine")


def test_prices():
    assert str(conf.price("apixo", "gpt-image-2", "4k")) == "0.08"
    assert conf.price("apixo", "unknown-model", "1k") is None


@pytest.mark.parametrize(
    "budgets",
    [[], {"DAILY": "5"}, {"USER_DAILY": "lots"}, {"SITE_MONTHLY": -1}, {"USER_MONTHLY": True}],
)
def test_bad_budgets_are_errors(settings, budgets):
    assert "imagegen.E010" in ids({"BUDGETS": budgets}, settings)


def test_unknown_budget_hint_suggests_the_closest(settings):
    settings.IMAGEGEN = {"BUDGETS": {"USER_DAYLY": "5"}}
    [message] = [m for m in check_settings() if m.id == "imagegen.E010"]
    assert "Did you mean 'USER_DAILY'?" in message.hint


def test_good_budgets_pass(settings):
    good = {"USER_DAILY": "5.00", "USER_MONTHLY": 50, "SITE_MONTHLY": None}
    assert "imagegen.E010" not in ids({"BUDGETS": good}, settings)
