"""storage.save_file with and without ``move``, on a file system storage and
on one that cannot take a local file as it is.

The family: move on / off x Django's FileSystemStorage / InMemoryStorage x
the name free / already taken. Whatever the case, the stored object holds
the source's bytes under the name asked for (a taken name is replaced, not
suffixed), with FILE_UPLOAD_PERMISSIONS on a file system. A move gives the
source file up as a temporary upload's is (the file system storage renames
it into place, the in-memory one deletes it once read); a copy leaves it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from imagegen.storage import get_storage, save_file

NAME = "imagegen/2026/11/moved/0.png"
BACKENDS = {
    "filesystem": "django.core.files.storage.FileSystemStorage",
    "memory": "django.core.files.storage.InMemoryStorage",
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, settings, tmp_path) -> str:
    settings.STORAGES = {
        **settings.STORAGES,
        "imagegen": {
            "BACKEND": BACKENDS[request.param],
            "OPTIONS": {"location": str(tmp_path / "media")}
            if request.param == "filesystem"
            else {},
        },
    }
    settings.FILE_UPLOAD_PERMISSIONS = 0o640
    return request.param


@pytest.mark.parametrize("taken", [False, True], ids=["free", "taken"])
@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
def test_save_file(backend: str, move: bool, taken: bool, tmp_path: Path) -> None:
    storage = get_storage()
    if taken:
        save_file(NAME, _source(tmp_path, "old", b"an older attempt's file"), "image/png")
    source = _source(tmp_path, "new", b"\x89PNG this attempt's bytes")

    assert save_file(NAME, source, "image/png", move=move) == NAME

    with storage.open(NAME) as stored:
        assert stored.read() == b"\x89PNG this attempt's bytes"
    assert source.exists() is not move
    if backend == "filesystem":
        mode = stat.S_IMODE(os.stat(storage.path(NAME)).st_mode)
        assert mode == 0o640
    assert storage.listdir(os.path.dirname(NAME))[1] == ["0.png"]


def _source(folder: Path, name: str, data: bytes) -> Path:
    """A finished local file, private as a download is (mode 0600)."""
    path = folder / name
    path.write_bytes(data)
    path.chmod(0o600)
    return path
