"""imagegen.E016: imagegen's URLs must be in the root URLconf, in the
``imagegen`` namespace; and where they are mounted (used by the storage checks)."""

from __future__ import annotations

import sys
import types

import pytest
from django.contrib import admin
from django.urls import include, path, set_script_prefix

from imagegen.checks import check_settings
from imagegen.checks.urls import mount_prefix


def _urlconf(monkeypatch, name, urlpatterns):
    module = types.ModuleType(name)
    module.urlpatterns = urlpatterns
    monkeypatch.setitem(sys.modules, name, module)
    return name


def _nested():
    return [path("imagegen/", include("imagegen.urls"))], "outer"


#: (URL patterns, mount prefix of imagegen's URLs or None when they cannot be reversed)
URLCONFS = {
    "included at imagegen/": (lambda: [path("imagegen/", include("imagegen.urls"))], "/imagegen/"),
    "included deeper": (
        lambda: [path("tools/images/", include("imagegen.urls"))],
        "/tools/images/",
    ),
    "included at the root": (lambda: [path("", include("imagegen.urls"))], "/"),
    "not included": (lambda: [path("admin/", admin.site.urls)], None),
    # "imagegen" is the application namespace: any instance name reverses.
    "included with an instance namespace": (
        lambda: [path("imagegen/", include("imagegen.urls", namespace="images"))],
        "/imagegen/",
    ),
    "inside another app's namespace": (lambda: [path("a/", include(_nested()))], None),
}


@pytest.mark.parametrize("case", URLCONFS)
def test_imagegen_urls_must_be_reversible(settings, monkeypatch, case):
    patterns, prefix = URLCONFS[case]
    settings.ROOT_URLCONF = _urlconf(monkeypatch, f"checks_urls_{abs(hash(case))}", patterns())
    found = {message.id for message in check_settings()}
    assert ("imagegen.E016" in found) == (prefix is None)
    assert mount_prefix() == prefix


def test_mount_prefix_includes_the_script_prefix(settings, monkeypatch):
    settings.ROOT_URLCONF = _urlconf(
        monkeypatch, "checks_urls_script", [path("imagegen/", include("imagegen.urls"))]
    )
    set_script_prefix("/site/")
    try:
        assert mount_prefix() == "/site/imagegen/"
    finally:
        set_script_prefix("/")


def test_no_root_urlconf_is_an_error(settings):
    del settings.ROOT_URLCONF
    assert "imagegen.E016" in {message.id for message in check_settings()}


@pytest.mark.parametrize("failure", ["missing module", "raises on import"])
def test_urlconf_that_fails_to_import_is_left_to_djangos_own_check(
    settings, monkeypatch, tmp_path, failure
):
    """No traceback from imagegen's checks, and no E016 blaming imagegen:
    Django's URL check reports the URLconf."""
    if failure == "raises on import":
        (tmp_path / "checks_broken_urls.py").write_text("raise RuntimeError('broken URLconf')\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        settings.ROOT_URLCONF = "checks_broken_urls"
    else:
        settings.ROOT_URLCONF = "checks_no_such_urls"
    found = {message.id for message in check_settings()}
    assert "imagegen.E016" not in found
    assert mount_prefix() is None
