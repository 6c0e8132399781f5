"""Spend figures for the cost report: what budgets count, grouped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncMonth

from ..models import GenerationJob
from .budgets import CHARGED_NOT_DELIVERED, COST, counted


@dataclass(frozen=True)
class Row:
    """Spend of one group: its key (a name, or a month), jobs and amount."""

    key: Any
    jobs: int
    amount: Decimal


def spend(*, since: datetime | None = None, until: datetime | None = None) -> dict[str, list[Row]]:
    """Spend per user, provider, resolution and month, largest first (months newest first)."""
    jobs = _period(counted(), since, until)
    groups = {
        "user": "created_by__username",
        "provider": "provider",
        "resolution": "resolution",
        "month": "month",
    }
    jobs = jobs.annotate(month=TruncMonth("created_at"))
    report = {}
    for name, field in groups.items():
        rows = (
            jobs.values(field)
            .annotate(jobs=Count("pk"), amount=Sum(COST))
            .order_by("-" + field if name == "month" else "-amount", field)
        )
        report[name] = [Row(row[field], row["jobs"], row["amount"] or Decimal(0)) for row in rows]
    return report


def charged_not_delivered(*, since: datetime | None = None, until: datetime | None = None) -> Row:
    """Jobs of the period that the provider charged for but that delivered
    nothing (they failed after it reported success), and what they cost:
    part of :func:`spend`'s figures, counted apart so the loss shows."""
    jobs = _period(counted().filter(CHARGED_NOT_DELIVERED), since, until)
    figures = jobs.aggregate(jobs=Count("pk"), amount=Sum(COST))
    return Row(None, figures["jobs"], figures["amount"] or Decimal(0))


def total(rows: list[Row]) -> Row:
    """The sum of a group's rows."""
    return Row(None, sum(r.jobs for r in rows), sum((r.amount for r in rows), Decimal(0)))


def _period(
    jobs: QuerySet[GenerationJob], since: datetime | None, until: datetime | None
) -> QuerySet[GenerationJob]:
    if since:
        jobs = jobs.filter(created_at__gte=since)
    if until:
        jobs = jobs.filter(created_at__lt=until)
    return jobs
