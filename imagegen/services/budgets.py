"""Spending limits: per-user daily and monthly, and site-wide monthly.

``IMAGEGEN["BUDGETS"]`` holds the limits in ``IMAGEGEN["CURRENCY"]``; a
missing or ``None`` limit means none. What a job costs is its charged cost,
else its estimate. Jobs that failed (moderation refusals included) cost
nothing, nor do jobs canceled or expired before the provider accepted them.
Days and months follow the site's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import conf
from ..choices import Status
from ..models import GenerationJob

#: The budget keys, in the order they are checked and shown.
LIMITS = {
    "USER_DAILY": gettext_lazy("your daily budget"),
    "USER_MONTHLY": gettext_lazy("your monthly budget"),
    "SITE_MONTHLY": gettext_lazy("the site's monthly budget"),
}

#: Precision of stored costs (the model fields' decimal places).
COST_QUANTUM = Decimal("0.0001")

#: The amount a job counts for: what was charged, else what it was estimated at.
COST = Coalesce(
    "charged_cost",
    "estimated_cost",
    Value(Decimal(0)),
    output_field=DecimalField(max_digits=12, decimal_places=4),
)


def counted(queryset: QuerySet[GenerationJob] | None = None) -> QuerySet[GenerationJob]:
    """Jobs that count against budgets and in the cost report."""
    queryset = GenerationJob.objects.all() if queryset is None else queryset
    never_accepted = Q(status__in=[Status.CANCELED, Status.EXPIRED], provider_task_id__isnull=True)
    return queryset.exclude(Q(status=Status.FAILED) | never_accepted)


@dataclass(frozen=True)
class BudgetState:
    """One limit, what has been spent against it, and what is left."""

    key: str
    label: str
    limit: Decimal
    spent: Decimal

    @property
    def left(self) -> Decimal:
        return max(Decimal(0), self.limit - self.spent)


def limits() -> dict[str, Decimal]:
    """The configured limits, as Decimals (unset ones left out)."""
    configured = conf.get_setting("BUDGETS") or {}
    return {key: Decimal(str(configured[key])) for key in LIMITS if configured.get(key) is not None}


def period_start(key: str, now: datetime | None = None) -> datetime:
    """Start of the current day or month (site time zone) for a budget key."""
    local = timezone.localtime(now)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if key.endswith("MONTHLY"):
        start = start.replace(day=1)
    return start


def states(user: Any) -> list[BudgetState]:
    """Every configured limit that applies to ``user``, with spend so far.

    Users with ``imagegen.exceed_budget`` have no per-user limits; the site
    limit applies to everyone.
    """
    result = []
    exempt = user is None or not getattr(user, "is_authenticated", False)
    exempt = exempt or user.has_perm("imagegen.exceed_budget")
    for key, limit in limits().items():
        jobs = counted().filter(created_at__gte=period_start(key))
        if key.startswith("USER"):
            if exempt:
                continue
            jobs = jobs.filter(created_by=user)
        spent = jobs.aggregate(total=Sum(COST))["total"] or Decimal(0)
        # The costs' own precision: SQLite's sums come back with 16 places.
        spent = spent.quantize(COST_QUANTUM)
        result.append(BudgetState(key, str(LIMITS[key]), limit, spent))
    return result


def check(user: Any, cost: Decimal | None) -> None:
    """Raise :class:`ValidationError` if a job costing ``cost`` would exceed a budget.

    Call inside the transaction that saves the job: on PostgreSQL it takes
    a transaction-scoped advisory lock, so two editors clicking at once
    cannot both spend the last of a budget.
    """
    if not cost or not limits():
        return
    _serialize()
    for state in states(user):
        if state.spent + cost > state.limit:
            currency = conf.get_setting("CURRENCY")
            raise ValidationError(
                _(
                    "This job costs %(cost)s %(currency)s, but %(budget)s "
                    "(%(limit)s %(currency)s) has only %(left)s %(currency)s left."
                )
                % {
                    "cost": money(cost),
                    "currency": currency,
                    "budget": state.label,
                    "limit": money(state.limit),
                    "left": money(state.left),
                },
                code="budget_exceeded",
            )


def money(value: Decimal) -> str:
    """An amount for people: two decimals, or more when a price needs them."""
    places = 2 if value == value.quantize(Decimal("0.01")) else 4
    return formats.number_format(value, places)


def _serialize() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('imagegen.budgets'))")
