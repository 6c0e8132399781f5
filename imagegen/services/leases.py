"""Leases the working process renews while it works (a heartbeat).

A worker that claims a job (to submit it, or to store its results) holds it
until ``lease_until``; nobody else takes the job before then, and the
sweeper looks at it again at that time (``next_poll_at``). While it works,
the holder renews the lease from a background thread every
:data:`RENEW_FRACTION` of its length, so a slow but alive worker keeps the
job however long its download, upload or provider call takes, and a dead
one (SIGKILL, a lost host) stops renewing: its job is free one lease length
after the last renewal, instead of after the longest the work could take.

Every renewal is a conditional UPDATE on the holder's claim (the job's
status and its attempt number). A worker whose job was taken over finds no
row: it stops renewing and, at its next :meth:`Lease.check`, raises
:class:`LeaseLostError` instead of committing. A holder that cannot renew
(the database unreachable) counts its lease lost once it has run out by its
own clock. Renewal ends after ``limit`` seconds, so a hung worker cannot
hold a job for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connections, router
from django.utils import timezone

from ..models import GenerationJob

logger = logging.getLogger("imagegen")

#: A lease is renewed every quarter of its length: a renewal may fail (the
#: database away for a moment) twice in a row before the lease runs out.
RENEW_FRACTION = 0.25


class LeaseLostError(Exception):
    """Another worker took over this job; this one must not commit."""


class Lease:
    """The hold of one claim on a job, renewed while the ``with`` block runs.

    ``claim`` are the filters that match the job only while this holder owns
    it (``pk``, ``status`` and the attempt counter the claim incremented);
    the claim itself set the first ``lease_until``, ``seconds`` ago at most.
    A claim made inside a transaction that is still open is invisible to
    other connections (and its row locked to them), so it is renewed on the
    caller's connection, at each :meth:`check`, instead of from a thread.
    """

    def __init__(self, claim: dict[str, Any], seconds: float, *, limit: float) -> None:
        self._claim = claim
        self.seconds = float(seconds)
        started = time.monotonic()
        self._renewed = started
        self._ends = started + self.seconds
        self._limit = started + limit
        self._lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        alias = router.db_for_write(GenerationJob)
        if not connections[alias].in_atomic_block:
            self._thread = threading.Thread(
                target=self._run, args=(alias,), name="imagegen-lease", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def renew(self) -> bool:
        """Push the lease one length ahead; False once it is no longer this holder's
        (taken over, or past ``limit``). Database errors propagate."""
        if self._lost:
            return False
        started = time.monotonic()
        if started >= self._limit:
            return False
        until = timezone.now() + timedelta(seconds=self.seconds)
        if not GenerationJob.objects.filter(**self._claim).update(
            lease_until=until, next_poll_at=until
        ):
            self._lost = True
            return False
        self._renewed = started
        self._ends = started + self.seconds
        return True

    def check(self) -> None:
        """Raise :class:`LeaseLostError` if the job may be another worker's now."""
        if self._thread is None and time.monotonic() - self._renewed >= self._interval:
            self.renew()
        if self._lost or time.monotonic() >= self._ends:
            raise LeaseLostError

    @property
    def _interval(self) -> float:
        return self.seconds * RENEW_FRACTION

    def _run(self, alias: str) -> None:
        try:
            while not self._stop.wait(self._interval):
                try:
                    if not self.renew():
                        return
                except DatabaseError as exc:
                    # The next renewal may get through; check() counts the lease
                    # lost if none does before it runs out.
                    logger.warning("Could not renew the lease of %s: %s", self._claim, exc)
        finally:
            # This thread's own connection, opened by the first renewal.
            connections[alias].close()
