"""A file-system storage that can stop a worker right after it wrote a
preview, before the preview's row is updated: where a SIGKILL leaves a file
no row references. Used by worker subprocesses through ``STORAGES``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage


class HoldingStorage(FileSystemStorage):
    """While the file ``hold`` exists, saving a preview (``*.thumb.webp``)
    writes it, creates ``<hold>.reached`` and then waits until ``hold`` is
    removed (or the process is killed)."""

    def __init__(self, *, hold: str, **options: Any) -> None:
        super().__init__(**options)
        self.hold = Path(hold)

    def _save(self, name: str, content: Any) -> str:
        stored = super()._save(name, content)
        if name.endswith(".thumb.webp") and self.hold.exists():
            self.hold.with_suffix(".reached").touch()
            while self.hold.exists():
                time.sleep(0.05)  # a worker held on purpose, not a test waiting
        return stored
