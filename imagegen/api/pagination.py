"""Cursor pagination over ``(-created_at, -id)``.

A cursor names the row a page starts after (``next``) or ends before
(``previous``), so pages do not shift when jobs are created meanwhile, and
a page costs one indexed query wherever it is in the list (no OFFSET, no
COUNT). Cursors are opaque to clients: base64 of a small JSON array.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from .. import jsonparse
from ..models import GenerationJob

AFTER = "a"
BEFORE = "b"


@dataclass(frozen=True)
class Cursor:
    direction: str  # AFTER: rows older than the key; BEFORE: newer
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.direction, self.created_at.isoformat(), str(self.id)])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """Raises ValueError for anything that is not a cursor this module made."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            # A cursor is one flat array: anything nested is not ours, and
            # parsed with the depth bounded it cannot recurse into a 500.
            direction, created, pk = jsonparse.loads(raw, max_depth=1)
            created_at = parse_datetime(created)
            job_id = uuid.UUID(pk)
            if direction not in (AFTER, BEFORE) or created_at is None:
                raise ValueError("not a cursor")
            # Out-of-range years surface here rather than in the database driver.
            created_at = created_at.astimezone(UTC)
        except (AttributeError, OverflowError, TypeError, ValueError) as exc:
            raise ValueError("not a cursor") from exc
        return cls(direction, created_at, job_id)


@dataclass(frozen=True)
class Page:
    rows: list[GenerationJob]
    next: Cursor | None
    previous: Cursor | None


def paginate(queryset: QuerySet[GenerationJob], size: int, cursor: Cursor | None) -> Page:
    """One page of ``queryset``, newest first, with the cursors around it."""
    if cursor is None or cursor.direction == AFTER:
        if cursor is not None:
            queryset = queryset.filter(
                Q(created_at__lt=cursor.created_at)
                | Q(created_at=cursor.created_at, id__lt=cursor.id)
            )
        rows = list(queryset.order_by("-created_at", "-id")[: size + 1])
        more, rows = len(rows) > size, rows[:size]
        return Page(
            rows,
            next=_key(AFTER, rows[-1]) if more else None,
            # Coming from a cursor means there is something before this page.
            previous=None if cursor is None else _before(rows, cursor),
        )
    queryset = queryset.filter(
        Q(created_at__gt=cursor.created_at) | Q(created_at=cursor.created_at, id__gt=cursor.id)
    )
    rows = list(queryset.order_by("created_at", "id")[: size + 1])
    more, rows = len(rows) > size, rows[:size]
    rows.reverse()
    return Page(
        rows,
        next=_key(AFTER, rows[-1]) if rows else Cursor(AFTER, cursor.created_at, cursor.id),
        previous=_key(BEFORE, rows[0]) if more else None,
    )


def _before(rows: list[GenerationJob], cursor: Cursor) -> Cursor:
    if rows:
        return _key(BEFORE, rows[0])
    return Cursor(BEFORE, cursor.created_at, cursor.id)


def _key(direction: str, job: GenerationJob) -> Cursor:
    return Cursor(direction, job.created_at, job.pk)
