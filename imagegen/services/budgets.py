"""Spending limits: per-user daily and monthly, and site-wide monthly.

``IMAGEGEN["BUDGETS"]`` holds the limits in ``IMAGEGEN["CURRENCY"]``; a
missing or ``None`` limit means none. What a job costs is its charged cost,
else its estimate, for the task it holds (or, while queued, the one it is
about to start). Jobs the provider reported failed (moderation refusals
included) cost nothing for it, nor do jobs canceled or expired before the
provider accepted them. A job that failed after the provider reported
success (the results could not be downloaded, verified or stored) costs
what the provider billed for that success: it is "charged, not delivered"
(:data:`CHARGED_NOT_DELIVERED`), shown apart in the cost report.

On top of that, a job costs its estimate once for every other paid task it
may have started: each submission whose answer was lost (the provider may
have accepted and charged it), each task the provider answered after the
job already had one, and an attempt whose worker died mid-call on a job
that ended. A lost answer whose task then reports to the job (a callback
carries its id) is the job's own task and stops counting twice; one whose
task reports failure counts nothing, like a failed job. See
docs/reliability.md, "Submission uncertainty".

Days and months follow the site's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Case, DecimalField, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import conf
from ..choices import TERMINAL, Status
from ..models import GenerationJob
from ..providers import get_provider

#: The budget keys, in the order they are checked and shown.
LIMITS = {
    "USER_DAILY": gettext_lazy("your daily budget"),
    "USER_MONTHLY": gettext_lazy("your monthly budget"),
    "SITE_MONTHLY": gettext_lazy("the site's monthly budget"),
}

#: Precision of stored costs (the model fields' decimal places).
COST_QUANTUM = Decimal("0.0001")

_MONEY = DecimalField(max_digits=12, decimal_places=4)

#: Jobs the provider reported a success for (only that report sets
#: ``provider_completed_at``): it billed the generation, whatever became of
#: the images on our side.
PROVIDER_SUCCEEDED = Q(provider_completed_at__isnull=False)

#: Jobs whose own task counts: those the provider reported a success for,
#: and all others but failed ones and those canceled or expired before the
#: provider accepted them.
OWN_TASK_COUNTS = PROVIDER_SUCCEEDED | (
    ~Q(status=Status.FAILED)
    & ~Q(status__in=[Status.CANCELED, Status.EXPIRED], provider_task_id__isnull=True)
)

#: Paid for and never delivered: jobs that failed after the provider
#: reported success (storing the results failed: ``BAD_RESULT``,
#: ``STORE_FAILED``, ``NO_RESULTS``, ``RESULTS_LOST``...).
CHARGED_NOT_DELIVERED = Q(status=Status.FAILED) & PROVIDER_SUCCEEDED

#: Paid tasks a job may have started besides the one it holds: its
#: submissions that were accepted or never answered, plus an attempt whose
#: worker died mid-call if the job ended without taking it over, less the
#: job's own task.
EXTRA_TASKS = Greatest(
    F("submit_accepted")
    + F("submit_lost")
    + Case(
        When(Q(submitting_since__isnull=False, status__in=TERMINAL), then=Value(1)),
        default=Value(0),
    )
    - Case(When(provider_task_id__isnull=False, then=Value(1)), default=Value(0)),
    Value(0),
    output_field=IntegerField(),
)

#: The amount a job counts for: its own task at what was charged, else what
#: it was estimated at; every extra task at the estimate.
COST = (
    Case(
        When(OWN_TASK_COUNTS, then=Coalesce("charged_cost", "estimated_cost", Value(Decimal(0)))),
        default=Value(Decimal(0)),
        output_field=_MONEY,
    )
    + Coalesce("estimated_cost", Value(Decimal(0)), output_field=_MONEY) * EXTRA_TASKS
)


def counted(queryset: QuerySet[GenerationJob] | None = None) -> QuerySet[GenerationJob]:
    """Jobs that count against budgets and in the cost report."""
    queryset = GenerationJob.objects.all() if queryset is None else queryset
    return queryset.alias(extra_tasks=EXTRA_TASKS).filter(OWN_TASK_COUNTS | Q(extra_tasks__gt=0))


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
    lock()
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


def script_pricing(user: Any, providers: list[str] | None = None) -> dict[str, Any]:
    """Prices and budgets for a generate form's script, which updates the
    price and the over-budget warning as options change.

    ``{"currency": str, "prices": {provider: {resolution: str | None}},
    "budgets": [{"label", "left", "limit_display", "left_display"}]}``:
    prices for ``providers`` (default: every provider editors may choose)
    and each resolution it offers, ``None`` where no price is configured;
    the budgets that apply to ``user``. Amounts are strings: plain numbers
    for the script, ``*_display`` formatted for people.
    """
    prices = {}
    for name in conf.configured_providers() if providers is None else providers:
        provider = get_provider(name)
        prices[name] = {
            resolution: None
            if (price := conf.price(name, provider.model, resolution)) is None
            else str(price)
            for resolution in provider.capabilities.resolutions
        }
    return {
        "currency": conf.get_setting("CURRENCY"),
        "prices": prices,
        "budgets": [
            {
                "label": state.label,
                "left": str(state.left),
                "limit_display": money(state.limit),
                "left_display": money(state.left),
            }
            for state in states(user)
        ],
    }


def money(value: Decimal) -> str:
    """An amount for people: two decimals, or more when a price needs them."""
    places = 2 if value == value.quantize(Decimal("0.01")) else 4
    return formats.number_format(value, places)


def lock() -> None:
    """Serialize budget checks until the transaction ends: a check and the
    jobs it allows commit before the next check reads the spend."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('imagegen.budgets'))")
