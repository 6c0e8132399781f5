"""The storage of result files: resolved on first use, never when the models
are imported; imagegen.E014 (not in STORAGES), E015 (cannot be created), W005
(does not overwrite), E022 (file URLs relative or at the site's root), E023
(no location), W006 (file URLs under imagegen's own prefix)."""

from __future__ import annotations

import sys
import types

import pytest
from django.core.files.storage import FileSystemStorage
from django.db.migrations.loader import MigrationLoader
from django.urls import include, path

from imagegen.checks import check_settings
from imagegen.models import GeneratedImage
from imagegen.storage import get_storage

FS = "django.core.files.storage.FileSystemStorage"
S3 = "storages.backends.s3.S3Storage"


def ids() -> set[str]:
    return {message.id for message in check_settings()}


def _storages(settings, **entries):
    settings.STORAGES = {**settings.STORAGES, **entries}


# --- Resolved on first use --------------------------------------------------


def test_model_fields_follow_the_configured_storage(settings, tmp_path):
    """The fields' storage is looked up when used, so it follows STORAGES and
    STORAGE_ALIAS changes; the migrations still name the callable."""
    field = GeneratedImage._meta.get_field("file")
    assert field.storage is get_storage()
    assert field.deconstruct()[3]["storage"] is get_storage
    _storages(settings, results={"BACKEND": FS, "OPTIONS": {"location": str(tmp_path)}})
    settings.IMAGEGEN = {**settings.IMAGEGEN, "STORAGE_ALIAS": "results"}
    assert field.storage.path("x.png") == str(tmp_path / "x.png")
    assert isinstance(field.storage, FileSystemStorage)
    migrated = MigrationLoader(None).project_state().apps.get_model("imagegen", "GeneratedImage")
    for name in ("file", "thumbnail"):
        field = GeneratedImage._meta.get_field(name)
        assert migrated._meta.get_field(name).deconstruct() == field.deconstruct()


def test_the_test_settings_pass():
    assert not {"imagegen.E014", "imagegen.E015", "imagegen.E022", "imagegen.E023"} & ids()
    assert not {"imagegen.W005", "imagegen.W006"} & ids()


# --- E014, E015 -------------------------------------------------------------


@pytest.mark.parametrize("alias", ["results", "", 5, ["default"]])
def test_storage_alias_must_name_a_storages_entry(settings, alias):
    """A name STORAGES lacks, and values that are no name at all."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "STORAGE_ALIAS": alias}
    assert "imagegen.E014" in ids()


@pytest.mark.parametrize("alias", [None, "default"])
def test_storages_without_default(settings, alias):
    settings.STORAGES = {k: v for k, v in settings.STORAGES.items() if k != "default"}
    settings.IMAGEGEN = {**settings.IMAGEGEN, "STORAGE_ALIAS": alias}
    assert "imagegen.E014" in ids()


def test_an_imagegen_entry_is_enough(settings, tmp_path):
    settings.STORAGES = {"imagegen": {"BACKEND": FS, "OPTIONS": {"location": str(tmp_path)}}}
    assert "imagegen.E014" not in ids()


@pytest.mark.parametrize(
    "entry",
    [
        {"BACKEND": "no_such_package.Storage"},
        {"BACKEND": "django.core.files.storage.NoSuchStorage"},
        {"BACKEND": FS, "OPTIONS": {"no_such_option": 1}},
    ],
)
def test_storage_that_cannot_be_created(settings, entry):
    _storages(settings, imagegen=entry)
    assert "imagegen.E015" in ids()


# --- W005 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "overwrite_setting", "warned"),
    [
        ({"file_overwrite": False}, None, True),
        ({}, False, True),
        ({"file_overwrite": True}, False, False),
        ({"file_overwrite": True}, None, False),
        ({}, None, False),
    ],
)
def test_s3_must_overwrite(settings, options, overwrite_setting, warned):
    """file_overwrite in OPTIONS, AWS_S3_FILE_OVERWRITE, both, neither."""
    pytest.importorskip("storages.backends.s3", reason="the s3 extra is not installed")
    if overwrite_setting is not None:
        settings.AWS_S3_FILE_OVERWRITE = overwrite_setting
    _storages(settings, imagegen={"BACKEND": S3, "OPTIONS": {"bucket_name": "b", **options}})
    assert ("imagegen.W005" in ids()) is warned


# --- E022, E023, W006 -------------------------------------------------------


@pytest.mark.parametrize(
    ("media_url", "options", "found"),
    [
        ("", {}, "imagegen.E022"),  # unset: Django makes it "/", the site's root
        ("/", {}, "imagegen.E022"),
        ("/media/", {"base_url": "media/"}, "imagegen.E022"),
        ("/media/", {"base_url": "/"}, "imagegen.E022"),
        ("/imagegen/", {}, "imagegen.W006"),
        ("/imagegen/media/", {}, "imagegen.W006"),
        ("/media/", {"base_url": "/imagegen/files/"}, "imagegen.W006"),
        ("/media/", {}, None),
        ("media/", {}, None),  # relative MEDIA_URL: Django adds the script prefix
        ("/imagegen-media/", {}, None),
        ("https://cdn.example.com/imagegen/", {}, None),
        ("//cdn.example.com/", {}, None),
    ],
)
def test_file_urls_must_be_served(settings, tmp_path, media_url, options, found):
    settings.MEDIA_URL = media_url
    _storages(settings, imagegen={"BACKEND": FS, "OPTIONS": {"location": str(tmp_path), **options}})
    assert {"imagegen.E022", "imagegen.W006"} & ids() == ({found} if found else set())


def test_under_the_prefix_where_imagegen_is_mounted(settings, monkeypatch, tmp_path):
    module = types.ModuleType("checks_storage_urls")
    module.urlpatterns = [path("tools/gen/", include("imagegen.urls"))]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    settings.ROOT_URLCONF = module.__name__
    _storages(settings, imagegen={"BACKEND": FS, "OPTIONS": {"location": str(tmp_path)}})
    settings.MEDIA_URL = "/imagegen/"  # no longer imagegen's prefix
    assert "imagegen.W006" not in ids()
    settings.MEDIA_URL = "/tools/gen/media/"
    assert "imagegen.W006" in ids()


@pytest.mark.parametrize(
    ("media_root", "location", "error"),
    [("", None, True), ("", "", True), ("", "LOCATION", False), ("ROOT", None, False)],
)
def test_files_need_a_location(settings, tmp_path, media_root, location, error):
    """MEDIA_ROOT unset, with no location or an empty one; a location of its
    own; MEDIA_ROOT set."""
    settings.MEDIA_ROOT = str(tmp_path) if media_root == "ROOT" else media_root
    options = {} if location is None else {"location": str(tmp_path) if location else ""}
    _storages(settings, imagegen={"BACKEND": FS, "OPTIONS": options})
    assert ("imagegen.E023" in ids()) is error
