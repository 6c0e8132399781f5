"""Are a provider's callbacks reaching this site?

A configured callback URL is no proof: a firewall, a proxy or a provider
outage can swallow every callback. The only evidence is how recent jobs
ended. When most of a provider's recent results were found by polling, the
next jobs are scheduled as if there were no callbacks (dense polls inside
the latency range) instead of waiting past the range for a callback that
will not come. As soon as callbacks win again, jobs go back to zero polls.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from ..choices import Source
from ..models import GenerationJob

#: How many recent outcomes decide, and how far back they may be.
SAMPLE = 10
WINDOW = timedelta(hours=1)


def callbacks_arriving(provider: str, now: datetime | None = None) -> bool:
    """True unless most of the provider's recent results were found by polling.

    With no recent results it assumes callbacks work: a new site, or one that
    was idle, starts with the cheap schedule. One indexed query
    (``imagegen_job_outcome_idx``).
    """
    now = now or timezone.now()
    recent = list(
        GenerationJob.objects.filter(provider=provider, provider_completed_at__gte=now - WINDOW)
        .exclude(completed_via="")
        .order_by("-provider_completed_at")
        .values_list("completed_via", flat=True)[:SAMPLE]
    )
    polled = sum(1 for via in recent if via == Source.POLL)
    return polled * 2 <= len(recent)
