"""A Django process that ends one job and may stop at a pause point, for the
outbox tests (``tests/faults/test_webhook_outbox.py``).

``python -m tests.faults.outbox_process <job id> <cancel|fail|expire> <outcome>``
on ``tests.settings`` with the test's overrides (the test database), where
``outcome`` is:

- ``commit``: end the job and exit.
- ``rollback``: end the job inside a transaction that then rolls back.
- ``crash-before-commit``: stop inside the transaction, after the webhook
  rows were written and before the commit (a receiver of
  ``job_changing`` connected after the outbox's own).
- ``crash-after-commit``: stop after the commit, as the first task message
  (the delivery's) is about to be published (Celery's
  ``before_task_publish``), so nothing was sent.

At a pause point the process prints ``paused <rows>`` (the webhook rows it
sees in its own transaction) and blocks reading stdin until the test kills
it: no sleep, no timing.
"""

from __future__ import annotations

import sys
from typing import Any

import django


class Rollback(Exception):
    """Raised to roll the change back."""


def main(job_id: str, end: str, outcome: str) -> None:
    django.setup()
    from celery.signals import before_task_publish
    from django.db import transaction

    from imagegen import services
    from imagegen.models import OutboundDelivery
    from imagegen.services.transitions import job_changing

    def pause(**kwargs: Any) -> None:
        rows = OutboundDelivery.objects.filter(job_id=job_id).count()
        print(f"paused {rows}", flush=True)
        sys.stdin.readline()  # the test kills the process here
        raise SystemExit("not killed")

    if outcome == "crash-before-commit":
        job_changing.connect(pause, weak=False)
    elif outcome == "crash-after-commit":
        before_task_publish.connect(pause, weak=False)
    change = {"cancel": services.cancel, "expire": services.expire, "fail": _fail}[end]
    if outcome == "rollback":
        try:
            with transaction.atomic():
                assert change(job_id)
                raise Rollback
        except Rollback:
            pass
    else:
        assert change(job_id)
    print("done", flush=True)


def _fail(job_id: str) -> bool:
    from imagegen import services
    from imagegen.choices import IN_FLIGHT

    return services.fail(job_id, "TEST", "Failed by the test.", from_statuses=list(IN_FLIGHT))


if __name__ == "__main__":
    main(*sys.argv[1:])
