"""Runs: several jobs started together by one request, and a job's lineage.

A run of **candidates** is 1-4 jobs with the same settings (APIXO's task
makes one image, so one job per candidate; every provider is driven the same
way, one image per job, even one whose API could return several per call).
A **comparison** is one job per variation of one setting: resolutions,
aspect ratios, or two or three wordings of the prompt.

The run's price is the sum of its jobs' prices, and budgets are checked once
for that total, in the transaction that creates every job of the run: a run
that does not fit creates nothing, and two runs started at once cannot both
spend the last of a budget (:func:`imagegen.services.budgets.check`).

A job's **lineage** names what it was made from and what was made from it.
A reference URL that one of the site's own views serves (a Wagtail library
image sent by a signed link) is shown as what it names, by the view's
describer (:func:`describes_references`), not as the bare URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf
from ..choices import ReviewStatus
from ..models import GeneratedImage, GenerationJob, GenerationRun
from ..providers import get_provider
from . import budgets, reviews
from .jobs import _check_idempotency_key, get_or_create_job, job_for_key, job_settings

#: The most candidates one run makes.
MAX_CANDIDATES = 4
#: The settings a comparison can vary, and how many values it takes.
COMPARABLE = {
    "resolution": (2, 3),
    "aspect_ratio": (2, 4),
    "prompt": (2, 3),
}


@dataclass(frozen=True)
class Comparison:
    """One setting (a key of :data:`COMPARABLE`) and the values to compare."""

    setting: str
    values: tuple[str, ...]


@dataclass
class Started:
    """What :func:`start` made (or found, for a repeated idempotency key):
    the run (None for a single job) and its jobs, in the order asked for."""

    run: GenerationRun | None
    jobs: list[GenerationJob]
    created: bool = True


@dataclass(frozen=True)
class SiteReference:
    """A reference URL served by one of the site's own views, as that view
    tells a reader what it is: ``label`` (what the reader may know of it) and
    ``link`` (where they may see it; "" when nowhere)."""

    label: str
    link: str = ""
    #: Where it comes from, e.g. "Image library".
    source: str = ""


#: A describer: the reader (None: unknown) and the URL's captured arguments
#: -> what the reference is, or None when the URL names nothing it knows.
Describer = Callable[..., SiteReference | None]
View = TypeVar("View", bound=Callable[..., Any])
_DESCRIBER = "imagegen_describe_reference"


def describes_references(describer: Describer) -> Callable[[View], View]:
    """Mark a view that serves reference images at the site's own URLs:
    in a job's lineage, each of its URLs the job sent is shown as
    ``describer(reader, *args, **kwargs)`` (the URL's captured arguments)."""

    def mark(view: View) -> View:
        setattr(view, _DESCRIBER, describer)
        return view

    return mark


def site_references(urls: list[str], reader: Any = None) -> dict[str, SiteReference]:
    """The ``urls`` that views of this site serve and describe
    (:func:`describes_references`), by URL, as ``reader`` may know them."""
    found = {}
    for url in urls:
        try:
            match = resolve(urlsplit(url).path)
        except Resolver404:
            continue
        describer = getattr(match.func, _DESCRIBER, None)
        if describer is not None and (described := describer(reader, *match.args, **match.kwargs)):
            found[url] = described
    return found


@dataclass
class Lineage:
    """Where a job came from and what came from it (links for its page)."""

    source_job: GenerationJob | None = None
    retry_of: GenerationJob | None = None
    reference_images: list[GeneratedImage] = field(default_factory=list)
    #: References served by the site itself (:func:`site_references`).
    site_references: list[SiteReference] = field(default_factory=list)
    #: The other reference URLs.
    reference_urls: list[str] = field(default_factory=list)
    derived_jobs: list[GenerationJob] = field(default_factory=list)
    retries: list[GenerationJob] = field(default_factory=list)
    used_as_reference_by: list[GenerationJob] = field(default_factory=list)

    @property
    def made_from(self) -> bool:
        return bool(
            self.source_job
            or self.retry_of
            or self.reference_images
            or self.site_references
            or self.reference_urls
        )

    @property
    def made_from_this(self) -> bool:
        return bool(self.derived_jobs or self.retries or self.used_as_reference_by)


def variations(
    settings: dict[str, Any], *, candidates: int = 1, compare: Comparison | None = None
) -> list[dict[str, Any]]:
    """The settings of each job of a run, in order. Raises ValidationError
    (on the fields ``candidates`` and ``compare``) for a count out of 1-4,
    a comparison of an unknown setting or with too few, too many or repeated
    values, or both at once."""
    if isinstance(candidates, bool) or not isinstance(candidates, int):
        raise ValidationError(
            {"candidates": _("The number of candidates must be a whole number.")},
            code="invalid_candidates",
        )
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise ValidationError(
            {
                # Plural by the limit; a translation may put the count asked for
                # after a colon, where it agrees with no word.
                "candidates": ngettext(
                    "Ask for 1 to %(max)d candidate; %(n)d asked.",
                    "Ask for 1 to %(max)d candidates; %(n)d asked.",
                    MAX_CANDIDATES,
                )
                % {"max": MAX_CANDIDATES, "n": candidates}
            },
            code="invalid_candidates",
        )
    if compare is None:
        return [dict(settings) for _i in range(candidates)]
    if candidates != 1:
        raise ValidationError(
            {"compare": _("A comparison makes one job per variation: ask for one candidate.")},
            code="compare_with_candidates",
        )
    if compare.setting not in COMPARABLE:
        raise ValidationError(
            {"compare": _("Unknown setting to compare: %(v)r.") % {"v": compare.setting}},
            code="invalid_compare",
        )
    low, high = COMPARABLE[compare.setting]
    values = [str(v) for v in compare.values]
    if compare.setting == "prompt":
        values = [v.strip() for v in values if v.strip()]
    if len(set(values)) != len(values) or not low <= len(values) <= high:
        raise ValidationError(
            {
                # Plural by the limit; a translation may put the count given after
                # a colon, where it agrees with no word.
                "compare": ngettext(
                    "Compare %(low)d to %(high)d different value; %(n)d given.",
                    "Compare %(low)d to %(high)d different values; %(n)d given.",
                    high,
                )
                % {"low": low, "high": high, "n": len(set(values))}
            },
            code="invalid_compare",
        )
    return [{**settings, compare.setting: value} for value in values]


def price(plan: list[dict[str, Any]]) -> Decimal | None:
    """What the jobs of ``plan`` (from :func:`variations`) cost together;
    None when a job has no configured price."""
    total = Decimal(0)
    for settings in plan:
        backend = get_provider(settings.get("provider"))
        one = conf.price(backend.name, backend.model, settings.get("resolution", ""))
        if one is None:
            return None
        total += one
    return total


def start(
    settings: dict[str, Any],
    *,
    candidates: int = 1,
    compare: Comparison | None = None,
    user: Any = None,
    source_job: GenerationJob | None = None,
    idempotency_key: str = "",
    idempotency_source: str = "",
) -> Started:
    """Create the jobs of a run (or a single job) from ``settings``, the
    keyword arguments of :func:`imagegen.services.create_job`.

    One candidate and no comparison: a single job, no run. Otherwise a
    :class:`GenerationRun` with all its jobs, created in one transaction
    after one budget check for the run's total. Raises ValidationError like
    ``create_job`` (nothing is saved then); a run over budget says what the
    whole run costs. With ``idempotency_key``, a repeated call returns what
    the first made (``created`` False).
    """
    plan = variations(settings, candidates=candidates, compare=compare)
    if idempotency_key:
        _check_idempotency_key(idempotency_key)
        _check_idempotency_key(_job_key(idempotency_key, len(plan) - 1))
        if existing := job_for_key(user, idempotency_source, idempotency_key):
            return _started_by(existing)
    run = None
    winner: GenerationJob | None = None
    with transaction.atomic():
        if len(plan) > 1:
            _check_budget(user, plan)
            run = GenerationRun.objects.create(
                kind=GenerationRun.Kind.COMPARE if compare else GenerationRun.Kind.CANDIDATES,
                created_by=user if getattr(user, "is_authenticated", False) else None,
                settings=_recorded(settings, candidates, compare, source_job),
            )
        jobs = []
        for index, job_kwargs in enumerate(plan):
            job, created = get_or_create_job(
                **job_kwargs,
                user=user,
                idempotency_key=_job_key(idempotency_key, index) if idempotency_key else "",
                idempotency_source=idempotency_source,
            )
            if not created:
                # A concurrent call with the same key made it first: theirs is
                # the run. Undo this one's; the winner's is read once this
                # block has rolled back (no query may run in it before then).
                transaction.set_rollback(True)
                winner = job
                break
            jobs.append(job)
        else:
            _link(jobs, run, source_job)
    if winner is not None:
        return _started_by(winner)
    return Started(run, jobs)


def _link(
    jobs: list[GenerationJob], run: GenerationRun | None, source: GenerationJob | None
) -> None:
    """Set the run and the job they were made from on ``jobs``, in one update."""
    links: dict[str, Any] = {"run": run} if run else {}
    if source is not None:
        links["source_job"] = source
    if links:
        GenerationJob.objects.filter(pk__in=[job.pk for job in jobs]).update(**links)
        for job in jobs:
            for name, value in links.items():
                setattr(job, name, value)


def more_like_this(
    job: GenerationJob, *, user: Any = None, candidates: int | None = None
) -> Started:
    """New candidates with ``job``'s settings, each linked to it as made from
    it (``source_job``). ``candidates`` defaults to as many as ``job``'s run
    of candidates had, else one."""
    if candidates is None:
        candidates = more_count(job)
    return start(
        job_settings(job),
        candidates=candidates,
        user=user,
        source_job=job,
    )


def more_count(job: GenerationJob) -> int:
    """How many candidates "more like this" makes from ``job`` by default:
    as many as its run of candidates had, else one."""
    if job.run is not None and job.run.kind == GenerationRun.Kind.CANDIDATES:
        return min(MAX_CANDIDATES, max(1, job.run.jobs.count()))
    return 1


def pick(image: GeneratedImage, *, user: Any = None) -> list[GeneratedImage]:
    """Choose ``image`` among its run's candidates: approve it and discard
    the run's other images still waiting for review (approved ones stay),
    with the undo time any discard gets (``DISCARD_UNDO_SECONDS``).
    Returns the images discarded. ValidationError for a discarded image."""
    if image.is_discarded:
        raise ValidationError(_("This image was discarded."), code="discarded")
    reviews.approve(image, user=user)
    job = image.job
    others = GeneratedImage.objects.filter(review_status=ReviewStatus.NEW).exclude(pk=image.pk)
    others = others.filter(job__run=job.run_id) if job.run_id else others.filter(job=job)
    discarded = []
    for other in others:
        if reviews.discard(other, user=user, undo=True):
            discarded.append(other)
    return discarded


def lineage(job: GenerationJob, jobs: Any = None, reader: Any = None) -> Lineage:
    """``job``'s lineage: made from (the job it was generated from, the job
    it retries, its reference images, the site's own references such as
    library images, and other URLs) and made from it (jobs generated from
    it, its retries, jobs using its images as references). ``jobs``: the
    queryset of jobs the reader may see (others are left out); ``reader``:
    the user, for what the site's references show them."""
    visible = GenerationJob.objects.all() if jobs is None else jobs
    parent_ids = [pk for pk in (job.source_job_id, job.retry_of_id) if pk is not None]
    ids = (
        set(visible.filter(pk__in=parent_ids).values_list("pk", flat=True)) if parent_ids else set()
    )
    own = site_references(list(job.reference_urls), reader)
    # Jobs generated from it and its retries: one query, split here.
    children = list(visible.filter(Q(source_job=job) | Q(retry_of=job)).order_by("created_at"))
    return Lineage(
        source_job=job.source_job if job.source_job_id in ids else None,
        retry_of=job.retry_of if job.retry_of_id in ids else None,
        reference_images=list(job.reference_images.filter(job__in=visible).select_related("job")),
        site_references=list(own.values()),
        reference_urls=[url for url in job.reference_urls if url not in own],
        derived_jobs=[child for child in children if child.source_job_id == job.pk],
        retries=[child for child in children if child.retry_of_id == job.pk],
        used_as_reference_by=list(
            visible.filter(reference_images__job=job).distinct().order_by("created_at")
        ),
    )


def _job_key(key: str, index: int) -> str:
    """The idempotency key of a run's job: the request's key for the first,
    so a repeated request finds the run through it, and numbered after a
    space after that: no API key (visible ASCII only) is one of these, so a
    client's next key never finds another run's later job."""
    return key if index == 0 else f"{key} {index + 1}"


def _started_by(job: GenerationJob) -> Started:
    if job.run_id is None:
        return Started(None, [job], created=False)
    return Started(job.run, list(job.run.jobs.order_by("created_at")), created=False)


def _check_budget(user: Any, plan: list[dict[str, Any]]) -> None:
    """One check for the whole run's price (each job is checked again as it
    is saved, in the same transaction: the total passing, each one does).
    The refusal names the run's price and the budget it does not fit."""
    total = price(plan)
    try:
        budgets.check(user, total)
    except ValidationError as exc:
        short = next((s for s in budgets.states(user) if s.spent + total > s.limit), None)
        if short is None:
            raise
        currency = conf.get_setting("CURRENCY")
        raise ValidationError(
            ngettext(
                "This run of %(n)d image costs %(cost)s %(currency)s, but %(budget)s "
                "(%(limit)s %(currency)s) has only %(left)s %(currency)s left. Nothing "
                "was started.",
                "This run of %(n)d images costs %(cost)s %(currency)s, but %(budget)s "
                "(%(limit)s %(currency)s) has only %(left)s %(currency)s left. Nothing "
                "was started.",
                len(plan),
            )
            % {
                "n": len(plan),
                "cost": budgets.money(total),
                "currency": currency,
                "budget": short.label,
                "limit": budgets.money(short.limit),
                "left": budgets.money(short.left),
            },
            code="budget_exceeded",
        ) from exc


def _recorded(
    settings: dict[str, Any],
    candidates: int,
    compare: Comparison | None,
    source_job: GenerationJob | None,
) -> dict[str, Any]:
    """The run's request as JSON: what "more like this" and the run page read."""
    recorded = {k: v for k, v in settings.items() if k != "reference_images"}
    recorded["reference_images"] = [image.pk for image in settings.get("reference_images", ())]
    recorded["candidates"] = candidates
    if compare is not None:
        recorded["compare"] = {"setting": compare.setting, "values": list(compare.values)}
    if source_job is not None:
        recorded["source_job"] = str(source_job.pk)
    return recorded
