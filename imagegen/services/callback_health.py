"""Are a provider's callbacks reaching this site?

A configured callback URL is no proof: a firewall, a proxy or a provider
outage can swallow every callback. The only evidence is how recent jobs
ended. Jobs wait for their callback (and make no poll) only while most of
the provider's recent results arrived by callback; otherwise (callbacks
failing, or no recent results to judge by: a new or idle site) they poll
inside the latency range, which costs a few status calls and keeps the
detection delay short. Jobs whose callbacks do arrive still end by callback,
which is what switches the next jobs back to zero polls.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from ..choices import Source
from ..models import GenerationJob

#: How many recent outcomes decide, and how far back they may be.
SAMPLE = 10
WINDOW = timedelta(hours=6)


def callbacks_arriving(provider: str, now: datetime | None = None) -> bool:
    """True when most of the provider's recent results arrived by callback.

    One indexed query (``imagegen_job_outcome_idx``).
    """
    now = now or timezone.now()
    recent = list(
        GenerationJob.objects.filter(
            provider=provider,
            provider_completed_at__gte=now - WINDOW,
            completed_via__in=[Source.CALLBACK, Source.POLL],
        )
        .order_by("-provider_completed_at")
        .values_list("completed_via", flat=True)[:SAMPLE]
    )
    called = sum(1 for via in recent if via == Source.CALLBACK)
    return called * 2 > len(recent)
