"""Purging old callback delivery records.

Every callback is recorded (:mod:`.callbacks`), refused ones too, so the
table grows with traffic anyone can send. Records of refused deliveries
(:data:`.callbacks.REFUSED`) are deleted ``REFUSED_DELIVERY_RETENTION_DAYS``
after they arrived, all others after ``DELIVERY_RETENTION_DAYS``. The
sweeper does it in passing (:func:`purge_due`: at most once per
:data:`PURGE_EVERY`, one batch of :data:`BATCH` rows of each kind, through
the index on ``received_at``); ``manage.py imagegen purge-deliveries`` does
it all at once (:func:`purge`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .. import conf
from ..models import WebhookDelivery
from . import health
from .callbacks import REFUSED

#: Rows one delete statement removes.
BATCH = 1000
#: Least time between two purges by the sweeper.
PURGE_EVERY = timedelta(hours=1)
#: The heartbeat of the last purge that left nothing expired behind.
PURGED = "purge-deliveries"


def expired(now: datetime | None = None) -> dict[str, QuerySet[WebhookDelivery]]:
    """The delivery records past their retention, per kind (``refused``, ``accepted``:
    every other outcome)."""
    now = now or timezone.now()
    refused_days = conf.get_setting("REFUSED_DELIVERY_RETENTION_DAYS")
    days = conf.get_setting("DELIVERY_RETENTION_DAYS")
    deliveries = WebhookDelivery.objects.order_by("received_at")
    return {
        "refused": deliveries.filter(
            outcome__in=REFUSED, received_at__lt=now - timedelta(days=refused_days)
        ),
        "accepted": deliveries.exclude(outcome__in=REFUSED).filter(
            received_at__lt=now - timedelta(days=days)
        ),
    }


def purge(now: datetime | None = None, *, batches: int | None = None) -> dict[str, int]:
    """Delete expired delivery records, oldest first, :data:`BATCH` per
    statement and at most ``batches`` statements per kind (None: until none
    is left). Returns the number deleted per kind; records the heartbeat
    :data:`PURGED` when nothing expired is left."""
    now = now or timezone.now()
    counts = {}
    finished = True
    for kind, rows in expired(now).items():
        counts[kind], rounds, done = 0, 0, False
        while not done and (batches is None or rounds < batches):
            ids = list(rows.values_list("pk", flat=True)[:BATCH])
            # By primary key: a DELETE cannot take LIMIT on PostgreSQL.
            WebhookDelivery.objects.filter(pk__in=ids).delete()
            counts[kind] += len(ids)
            rounds += 1
            done = len(ids) < BATCH
        finished = finished and done
    if finished:
        health.record(PURGED, now)
    return counts


def purge_due(now: datetime | None = None) -> int:
    """The sweeper's share: one batch of each kind when the last complete
    purge is :data:`PURGE_EVERY` old (a backlog is then worked off one batch
    per sweep, since the purge records its heartbeat only once done).
    Returns the number of records deleted."""
    now = now or timezone.now()
    last = health.last_seen(PURGED).get(PURGED)
    if last is not None and now - last < PURGE_EVERY:
        return 0
    return sum(purge(now, batches=1).values())
