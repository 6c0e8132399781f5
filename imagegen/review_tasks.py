"""The Celery task that deletes a discarded image's files once its time to
undo (``DISCARD_UNDO_SECONDS``) is over.

Imported by :mod:`imagegen.services.reviews`, so every process that loads
the service layer (a worker loading :mod:`imagegen.tasks` included) knows it.
"""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger("imagegen")


@shared_task(
    name="imagegen.purge_discarded",
    soft_time_limit=50,
    time_limit=60,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def purge_discarded(image_id: str) -> str:
    """Delete a discarded image's files if its time to undo is over; sent
    earlier than that (countdowns stop at ``MAX_COUNTDOWN``), it sends
    itself again for the rest. A restored image is left alone."""
    from . import conf
    from .services import reviews
    from .services.transitions import enqueue

    left = reviews.seconds_to_purge(image_id)
    if left is None:
        return "nothing"
    if left > 0:
        enqueue(purge_discarded, image_id, countdown=min(left, conf.get_setting("MAX_COUNTDOWN")))
        return "later"
    return "purged" if reviews.purge(image_id) else "nothing"
