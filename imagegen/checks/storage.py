"""The storage result files go to (``STORAGE_ALIAS``, else ``STORAGES["imagegen"]``,
else ``STORAGES["default"]``): that it exists, keeps imagegen's deterministic
keys, and gives files URLs that are served."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Error, Warning
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.urls import get_script_prefix

from .. import conf
from ..storage import storage_alias
from .urls import mount_prefix

_SERVE_HINT = (
    "Set MEDIA_URL = '/media/' and serve MEDIA_ROOT at it (your web server, or "
    "django.conf.urls.static.static() in development); see docs/install.md."
)


def check() -> list[CheckMessage]:
    configured = conf.get_setting("STORAGE_ALIAS")
    if configured is not None and not (isinstance(configured, str) and configured):
        return [
            Error(
                "IMAGEGEN['STORAGE_ALIAS'] must be the name of a STORAGES entry, or None.",
                hint="None means 'imagegen' if STORAGES has it, else 'default'.",
                id="imagegen.E014",
            )
        ]
    alias = storage_alias()
    if alias not in storages.backends:
        return [_missing(alias, configured)]
    try:
        storage = storages[alias]
    except Exception as exc:  # any backend's import or construction failure
        return [
            Error(
                f"STORAGES[{alias!r}], where imagegen stores result files, cannot be created: "
                f"{type(exc).__name__}: {exc}",
                hint="Check its BACKEND and OPTIONS; S3 needs pip install 'django-imagegen[s3]'.",
                id="imagegen.E015",
            )
        ]
    return [*_check_overwrite(alias, storage), *_check_file_system(alias, storage)]


def _missing(alias: str, configured: str | None) -> Error:
    if configured:
        return Error(
            f"IMAGEGEN['STORAGE_ALIAS'] is {alias!r}, which is not in settings.STORAGES.",
            hint=f"Add STORAGES[{alias!r}], or set STORAGE_ALIAS to one of: "
            f"{', '.join(map(repr, storages.backends))}.",
            id="imagegen.E014",
        )
    return Error(
        "settings.STORAGES has neither 'imagegen' nor 'default': imagegen has nowhere to "
        "store result files.",
        hint="Add STORAGES['default'] = {'BACKEND': "
        "'django.core.files.storage.FileSystemStorage'} (Django's default), or a "
        "STORAGES['imagegen'] for imagegen's files alone.",
        id="imagegen.E014",
    )


def _check_overwrite(alias: str, storage: Storage) -> list[CheckMessage]:
    """django-storages' ``file_overwrite`` (``AWS_S3_FILE_OVERWRITE`` for S3)
    must stay on: a retried store writes the same key again (storage.save_file)."""
    if getattr(storage, "file_overwrite", True) is not False:
        return []
    return [
        Warning(
            f"STORAGES[{alias!r}], where imagegen stores result files, has file_overwrite "
            "off: a store that races a retry of itself can leave a second, renamed copy "
            "instead of replacing the file at its deterministic key.",
            hint="Give imagegen a storage that overwrites: STORAGES['imagegen'] with "
            "OPTIONS {'file_overwrite': True, ...} (AWS_S3_FILE_OVERWRITE may stay False "
            "for your other files).",
            id="imagegen.W005",
        )
    ]


def _check_file_system(alias: str, storage: Storage) -> list[CheckMessage]:
    if not isinstance(storage, FileSystemStorage):
        return []
    errors: list[CheckMessage] = []
    if not storage.base_location:
        errors.append(
            Error(
                f"STORAGES[{alias!r}], where imagegen stores result files, has no location "
                "and MEDIA_ROOT is not set: files would be written to the current directory "
                "of each process (web server, Celery worker).",
                hint="Set MEDIA_ROOT to an absolute path shared by the web and worker "
                "processes, e.g. BASE_DIR / 'media'.",
                id="imagegen.E023",
            )
        )
    base_url = storage.base_url
    parts = urlsplit(base_url or "")
    if parts.scheme or parts.netloc:
        return errors  # served from another host, say a CDN
    if not base_url or not base_url.startswith("/"):
        errors.append(
            Error(
                f"STORAGES[{alias!r}], where imagegen stores result files, has no base_url "
                f"or a relative one ({base_url!r}): file URLs would resolve against each "
                "page's own URL and 404.",
                hint=_SERVE_HINT,
                id="imagegen.E022",
            )
        )
    elif parts.path == get_script_prefix():
        errors.append(
            Error(
                f"STORAGES[{alias!r}], where imagegen stores result files, serves them from "
                f"the site's root ({base_url!r}: MEDIA_URL is not set, or the storage's "
                "base_url is '/'): their URLs (/imagegen/2026/...) fall among the site's own "
                "pages, under imagegen's URL prefix when it is /imagegen/, and 404.",
                hint=_SERVE_HINT,
                id="imagegen.E022",
            )
        )
    else:
        prefix = mount_prefix()
        if prefix and parts.path.startswith(prefix):
            errors.append(
                Warning(
                    f"STORAGES[{alias!r}], where imagegen stores result files, serves them "
                    f"under imagegen's own URL prefix ({base_url!r} is under {prefix!r}): "
                    "a web server that routes that prefix to Django sends the file requests "
                    "there too, where they 404 unless Django itself serves MEDIA_ROOT.",
                    hint="Use a MEDIA_URL outside imagegen's prefix, e.g. '/media/'.",
                    id="imagegen.W006",
                )
            )
    return errors
