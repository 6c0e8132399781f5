"""The doctor's storage check: result files can be written, read back, and
fetched at the URL the storage gives them."""

from __future__ import annotations

import uuid
from urllib.parse import urljoin, urlsplit

import httpx
from django.core.files.base import ContentFile
from django.core.files.storage import Storage

from .. import conf
from ..fetching import redact_url
from ..storage import get_storage, storage_alias
from .findings import FAIL, OK, WARN, Finding, brief

CHECK = "storage"


def check_storage(timeout: float) -> Finding:
    """Save a small probe file through imagegen's storage, read it back, fetch
    its URL over HTTP, and delete it."""
    alias = storage_alias()
    where = f"STORAGES[{alias!r}]"
    nonce = uuid.uuid4().hex
    content = f"imagegen doctor probe {nonce}\n".encode()
    storage = get_storage()
    try:
        name = storage.save(f"imagegen/doctor/{nonce}.txt", ContentFile(content))
    except Exception as exc:
        return Finding(
            CHECK, FAIL, f"cannot write to {where}: {brief(exc)}: check its options and access."
        )
    try:
        finding = _read_and_fetch(storage, name, content, where, timeout)
    finally:
        try:
            storage.delete(name)
        except Exception as exc:
            deleting = f"cannot delete {name} from {where}: {brief(exc)}: check its access."
        else:
            deleting = ""
    if deleting and not finding.failed:
        return Finding(CHECK, FAIL, deleting)
    return finding


def _read_and_fetch(
    storage: Storage, name: str, content: bytes, where: str, timeout: float
) -> Finding:
    try:
        with storage.open(name, "rb") as handle:
            read = handle.read()
    except Exception as exc:
        return Finding(CHECK, FAIL, f"wrote {name} to {where} but cannot read it: {brief(exc)}.")
    if read != content:
        return Finding(CHECK, FAIL, f"{name} in {where} reads back different bytes.")
    try:
        url = storage.url(name)
    except Exception as exc:
        return Finding(CHECK, FAIL, f"{where} gives no URL for {name}: {brief(exc)}.")
    shown = redact_url(url)  # a signed URL's query string is a credential
    fix = "check MEDIA_URL or the storage's URL options"
    if not urlsplit(url).scheme:
        base = conf.get_setting("CALLBACK_BASE_URL")
        if not base:
            return Finding(
                CHECK,
                WARN,
                f"wrote, read back and deleted a file in {where}; cannot check its URL "
                f"{shown}: relative and no CALLBACK_BASE_URL to join it to.",
            )
        parts = urlsplit(base)
        url = urljoin(f"{parts.scheme}://{parts.netloc}/", url)
        shown = redact_url(url)
        fix = f"is the site running at {parts.scheme}://{parts.netloc}? Else {fix}"
    try:
        with httpx.Client(trust_env=False, timeout=timeout, follow_redirects=True) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        return Finding(
            CHECK,
            FAIL,
            f"wrote a file in {where}, but its URL {shown} cannot be fetched: {brief(exc)}: {fix}.",
        )
    if response.status_code != 200 or response.content != content:
        got = "other bytes" if response.status_code == 200 else str(response.status_code)
        return Finding(
            CHECK,
            FAIL,
            f"wrote a file in {where}, but its URL {shown} answered {got}: serve MEDIA_ROOT "
            "at MEDIA_URL (docs/install.md) or fix the storage's URL options.",
        )
    return Finding(
        CHECK, OK, f"wrote, read back, fetched at {shown} and deleted a file in {where}."
    )
