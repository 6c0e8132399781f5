"""Creating jobs and moving them through submission, progress and failure."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Required, TypedDict, Unpack
from urllib.parse import urljoin

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from .. import conf, failures, scheduling, signals, tokens
from ..choices import (
    IN_FLIGHT,
    AspectRatio,
    Mode,
    Resolution,
    ReviewStatus,
    Source,
    Status,
    TaskStatus,
)
from ..exceptions import (
    ImagegenConfigurationError,
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
    UnsafeURLError,
)
from ..fetching import FetchPolicy, check_url
from ..models import GenerationJob
from ..providers import (
    GenerationRequest,
    Provider,
    TaskState,
    get_provider,
    is_sandbox,
    sandbox_allowed,
)
from . import budgets
from .callback_health import callbacks_arriving
from .leases import Lease
from .transitions import enqueue, send_after_commit, transition
from .work_folders import SUBMIT, attempt_folder

logger = logging.getLogger("imagegen")

#: How long a claimed poll holds a job before the sweeper may claim it again.
POLL_LEASE = timedelta(seconds=60)
#: Seconds past the provider call's longest duration that a submitting
#: worker keeps renewing its lease, for the writes that record the answer.
SUBMIT_MARGIN = 10


class JobArguments(TypedDict, total=False):
    """The keyword arguments of :func:`get_or_create_job` (its signature
    has their defaults), as :func:`create_job` takes them."""

    prompt: Required[str]
    mode: str
    resolution: str
    aspect_ratio: str
    reference_urls: Sequence[str]
    reference_images: Sequence[Any]
    provider: str | None
    user: Any
    target: Any
    retry_of: GenerationJob | None
    idempotency_key: str
    idempotency_source: str


def create_job(**arguments: Unpack[JobArguments]) -> GenerationJob:
    """Validate and save a job: :func:`get_or_create_job` without its "created" flag."""
    job, _created = get_or_create_job(**arguments)
    return job


def get_or_create_job(
    *,
    prompt: str,
    mode: str = Mode.TEXT_TO_IMAGE,
    resolution: str = Resolution.R1K,
    aspect_ratio: str = AspectRatio.AUTO,
    reference_urls: Sequence[str] = (),
    reference_images: Sequence[Any] = (),
    provider: str | None = None,
    user: Any = None,
    target: Any = None,
    retry_of: GenerationJob | None = None,
    idempotency_key: str = "",
    idempotency_source: str = "",
) -> tuple[GenerationJob, bool]:
    """Validate and save a job; its submission is enqueued when the transaction commits.
    Returns the job and whether this call made it.

    Raises :class:`django.core.exceptions.ValidationError` (with per-field
    messages) for input the provider would refuse, and for a job that would
    exceed a budget (see :mod:`imagegen.services.budgets`); nothing is saved
    then. With an ``idempotency_key`` a second call with the same key, by
    the same user through the same ``idempotency_source`` (``"admin"``,
    ``"wagtail"``, ``"api"``, ``"retry"``...; none given:
    :data:`DEFAULT_IDEMPOTENCY_SOURCE`), returns the first call's job
    instead of creating another (``created`` False): see
    :func:`idempotency_scope`.
    """
    if idempotency_key:
        _check_idempotency_key(idempotency_key)
        if existing := job_for_key(user, idempotency_source, idempotency_key):
            return existing, False
    backend = get_provider(provider)
    reference_urls = [str(url).strip() for url in reference_urls]
    reference_images = list(reference_images)
    _validate(backend, prompt, mode, resolution, aspect_ratio, reference_urls, reference_images)
    _check_sandbox_allowed(backend)
    now = timezone.now()
    job = GenerationJob(
        provider=backend.name,
        model=backend.model,
        mode=mode,
        prompt=prompt,
        reference_urls=reference_urls,
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        status=Status.QUEUED,
        deadline_at=now + timedelta(seconds=conf.get_setting("JOB_TIMEOUT")),
        # If the submit message is lost, the sweeper sends it again after this.
        next_poll_at=now + timedelta(seconds=conf.get_setting("SUBMIT_GRACE")),
        estimated_cost=conf.price(backend.name, backend.model, resolution),
        created_by=user if getattr(user, "is_authenticated", False) else None,
        # The requester's language, for work done later for them (alt text drafts).
        language=get_language() or "",
        retry_of=retry_of,
        idempotency_key=idempotency_key,
        idempotency_scope=idempotency_scope(user, idempotency_source) if idempotency_key else "",
    )
    if target is not None:
        job.target_content_type = ContentType.objects.get_for_model(target)
        job.target_object_id = str(target.pk)
    job.callback_token_hash = tokens.hash_token(tokens.callback_token(job.pk))
    try:
        with transaction.atomic():
            budgets.check(user, job.estimated_cost)
            job.save()
            if reference_images:
                job.reference_images.set(reference_images)
    except IntegrityError:
        # The same key saved by a concurrent call: that call's job is the one.
        if idempotency_key and (existing := job_for_key(user, idempotency_source, idempotency_key)):
            return existing, False
        raise
    enqueue_submit(job.pk)
    return job, True


def enqueue_submit(job_id: Any) -> None:
    """Send ``imagegen.submit_job`` for ``job_id`` after commit, with Celery
    time limits that let the slowest configured provider's call finish: an
    OpenAI generation may take its ``TIMEOUT`` (300 s) plus a download per
    reference, far past the task's static limits (the lease, not the time
    limit, bounds how long a dead worker holds the job)."""
    from ..tasks import SUBMIT_TIME_LIMIT, submit_job

    limit = max(SUBMIT_TIME_LIMIT, longest_submit_seconds())
    enqueue(submit_job, str(job_id), soft_time_limit=limit, time_limit=limit + 20)


def longest_submit_seconds() -> float:
    """The longest a submission to any configured provider may take, with the
    most references it accepts, plus the margin for recording the answer."""
    longest = 0.0
    for name in conf.configured_providers():
        try:
            backend = get_provider(name)
        except ImagegenConfigurationError:
            continue  # reported by the system checks
        references = backend.capabilities.max_references
        longest = max(longest, backend.submit_seconds(references) + SUBMIT_MARGIN)
    return longest


#: The source of an idempotency key whose caller names none (the command
#: line, a site's own code calling :func:`create_job`).
DEFAULT_IDEMPOTENCY_SOURCE = "service"
#: A source's name: short, so that it and any user id fit the scope's 64 characters.
_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,19}")
#: The model field's length.
_MAX_KEY_LENGTH = 100


def idempotency_scope(user: Any, source: str) -> str:
    """Where an idempotency key is unique: ``"<source>:<user id>"``, or
    ``"<source>:-"`` for no user (automations, the command line).

    A key finds only the jobs its own user made through its own source, so
    one user's key can neither return nor take over another user's job, and
    a form's key never meets an API client's or a retry's. No ``source``
    is :data:`DEFAULT_IDEMPOTENCY_SOURCE`. Raises ValueError for a
    malformed one (a programming error, not input).
    """
    source = source or DEFAULT_IDEMPOTENCY_SOURCE
    if not _SOURCE_NAME.fullmatch(source):
        raise ValueError(
            f"Idempotency source {source!r}: 1 to 20 of a-z, 0-9, '_' and '-', from a letter."
        )
    owner = str(user.pk) if getattr(user, "is_authenticated", False) else "-"
    if len(source) + 1 + len(owner) > 64:
        # A custom user model's long primary key: its digest is as unique.
        owner = "#" + hashlib.sha256(owner.encode()).hexdigest()[:40]
    return f"{source}:{owner}"


def job_for_key(user: Any, source: str, key: str) -> GenerationJob | None:
    """The job ``user`` made through ``source`` with idempotency ``key``, if any."""
    if not key:
        return None
    scope = idempotency_scope(user, source)
    return GenerationJob.objects.filter(idempotency_scope=scope, idempotency_key=key).first()


def _check_idempotency_key(key: str) -> None:
    if not isinstance(key, str) or len(key) > _MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError(
            {
                "idempotency_key": ngettext(
                    "The request key must be at most %(max)d printable character; reload the form.",
                    "The request key must be at most %(max)d printable characters; "
                    "reload the form.",
                    _MAX_KEY_LENGTH,
                )
                % {"max": _MAX_KEY_LENGTH}
            },
            code="invalid_idempotency_key",
        )


def _check_sandbox_allowed(backend: Provider) -> None:
    """The local sandbox makes no job on a site that has not chosen it
    (system check E026 reports that site too)."""
    if is_sandbox(backend) and not sandbox_allowed():
        raise ValidationError(
            {
                "provider": _(
                    "The sandbox provider is for development: this site runs with DEBUG "
                    "off and does not set IMAGEGEN_ALLOW_SANDBOX."
                )
            },
            code="sandbox_not_allowed",
        )


def retry(job: GenerationJob, *, user: Any = None) -> tuple[GenerationJob, bool]:
    """Create a new job with ``job``'s settings, linked to it by ``retry_of``.

    Only failed and expired jobs are retried. Retrying twice returns the
    first retry (``created`` is False then, also for the clicks that lost a
    race to make it), so a repeated click or a concurrent one cannot pay
    twice. That is per user: another user's retry of the same job is never
    handed out, that user gets a retry of their own. Raises ValidationError
    like :func:`create_job`, and for a job that cannot be retried.
    """
    if job.status not in (Status.FAILED, Status.EXPIRED):
        raise ValidationError(
            _("Only failed or expired jobs can be retried; this one is %(status)s.")
            % {"status": job.get_status_display()},
            code="not_retryable",
        )
    key = str(job.pk)
    # This user's own retry only: another user's is theirs to see and pay
    # for. Retries made before keys were scoped to users have no key of the
    # kind, and are found by their link.
    caller = user if getattr(user, "is_authenticated", False) else None
    existing = (
        job_for_key(user, "retry", key)
        or job.retries.filter(created_by=caller).order_by("created_at").first()
    )
    if existing:
        return existing, False
    new, created = get_or_create_job(
        user=user,
        retry_of=job,
        idempotency_key=key,
        idempotency_source="retry",
        **job_settings(job),
    )
    if created and job.target_content_type_id:
        # The retry takes the job's place in its target's field history, an
        # add form's job (model and field, no object yet) included.
        target = {
            "target_content_type_id": job.target_content_type_id,
            "target_object_id": job.target_object_id,
            "target_field": job.target_field,
        }
        GenerationJob.objects.filter(pk=new.pk).update(**target)
        for name, value in target.items():
            setattr(new, name, value)
    return new, created


def job_settings(job: GenerationJob) -> dict[str, Any]:
    """The arguments of :func:`create_job` that made ``job``: enough to make it again."""
    return {
        "prompt": job.prompt,
        "mode": job.mode,
        "resolution": job.resolution,
        "aspect_ratio": job.aspect_ratio,
        "reference_urls": list(job.reference_urls),
        # Not the discarded ones, even while their discard can be undone.
        "reference_images": list(
            job.reference_images.exclude(file="").exclude(review_status=ReviewStatus.DISCARDED)
        ),
        "provider": job.provider,
    }


def _validate(
    backend: Provider,
    prompt: str,
    mode: str,
    resolution: str,
    aspect_ratio: str,
    reference_urls: list[str],
    reference_images: list[Any],
) -> None:
    caps = backend.capabilities
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not isinstance(prompt, str) or not prompt.strip():
        add("prompt", _("Enter a prompt."))
    elif len(prompt) > caps.max_prompt_length:
        add(
            "prompt",
            ngettext(
                "The prompt has %(n)d character; the limit is %(max)d.",
                "The prompt has %(n)d characters; the limit is %(max)d.",
                len(prompt),
            )
            % {"n": len(prompt), "max": caps.max_prompt_length},
        )
    elif any(ord(c) < 32 and c not in "\n\r\t" for c in prompt):
        add("prompt", _("The prompt contains control characters."))
    if mode not in caps.modes:
        add("mode", _("Unsupported mode %(v)r.") % {"v": mode})
    if resolution not in caps.resolutions:
        add("resolution", _("Unsupported resolution %(v)r.") % {"v": resolution})
    if aspect_ratio not in caps.aspect_ratios:
        add("aspect_ratio", _("Unsupported aspect ratio %(v)r.") % {"v": aspect_ratio})
    count = len(reference_urls) + len(reference_images)
    if mode == Mode.IMAGE_TO_IMAGE and count == 0:
        add("reference_urls", _("Image-to-image needs at least one reference image."))
    if mode == Mode.TEXT_TO_IMAGE and count:
        add("reference_urls", _("Text-to-image takes no reference images."))
    if count > caps.max_references:
        add(
            "reference_urls",
            # Plural by the limit; a translation may put the count given after a
            # colon, where it agrees with no word.
            ngettext(
                "At most %(max)d reference image; %(n)d given.",
                "At most %(max)d reference images; %(n)d given.",
                caps.max_references,
            )
            % {"max": caps.max_references, "n": count},
        )
    policy = FetchPolicy(allowed_ports=None)
    for url in reference_urls:
        try:
            check_url(url, policy)
        except UnsafeURLError as exc:
            add("reference_urls", exc.message)
    if errors:
        raise ValidationError(errors)


def callback_url(job: GenerationJob) -> str | None:
    """The URL the provider calls back, or None when callbacks are off."""
    base = conf.get_setting("CALLBACK_BASE_URL")
    if not base or not get_provider(job.provider).capabilities.supports_callback:
        return None
    path = reverse(
        "imagegen:callback",
        kwargs={
            "provider": job.provider,
            "job_id": job.pk,
            "token": tokens.callback_token(job.pk),
        },
    )
    return urljoin(base.rstrip("/") + "/", path.lstrip("/"))


def submit(job_id: Any) -> str:
    """Submit a queued job to its provider. Returns what happened.

    Raises :class:`TransientError` for the task to retry later; permanent
    provider errors fail the job here. Only one worker at a time submits a
    job: the claim takes a lease, so a duplicate submit message is a no-op.

    Every request to the provider is an attempt, answered or not, and counts
    against ``SUBMIT_MAX_ATTEMPTS``; reaching it fails the job with the
    cause. An attempt whose answer is lost (the provider may have accepted
    and charged it) is counted in ``submit_lost``, which budgets count as
    spend, and the next attempt waits for the accepted task to report
    (:func:`resubmit_delay`). An attempt still marked in flight when the job
    is claimed again belongs to a worker that died mid-call: its answer is
    lost too.
    """
    now = timezone.now()
    lease = timedelta(seconds=conf.get_setting("SUBMIT_LEASE"))
    claimed = (
        GenerationJob.objects.filter(pk=job_id, status=Status.QUEUED)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            lease_until=now + lease,
            next_poll_at=now + lease,
            updated_at=now,
        )
    )
    if not claimed:
        return "not-claimed"
    job = GenerationJob.objects.get(pk=job_id)
    if job.deadline_at <= now:
        expire(job.pk)
        return "expired"
    backend = get_provider(job.provider)
    if job.submitting_since is not None:
        stopped = {failures.TEMPLATE: "WORKER_STOPPED"}
        return _submit_uncertain(job, backend, job.submitting_since, stopped)
    if job.submit_attempts >= conf.get_setting("SUBMIT_MAX_ATTEMPTS"):
        return _give_up(job.pk)
    request = GenerationRequest(
        mode=job.mode,
        prompt=job.prompt,
        resolution=job.resolution,
        aspect_ratio=job.aspect_ratio,
        image_urls=tuple(reference_image_urls(job)),
        callback_url=callback_url(job),
    )
    # The provider's concurrency cap: without a free slot the job waits,
    # queued, its attempts untouched (services.slots).
    from . import slots

    with transaction.atomic():
        if not slots.take(job):
            return slots.wait(job)
        started = _start_attempt(job)
    if started is None:
        return "not-claimed"
    # Renewed while the call runs, up to the longest it may take: no other
    # worker submits the job meanwhile, and a worker that dies in the call
    # loses it SUBMIT_LEASE seconds later (its attempt still marked in flight).
    holder = {"pk": job.pk, "status": Status.QUEUED, "submitting_since": started}
    call = backend.submit_seconds(len(request.image_urls)) + SUBMIT_MARGIN
    try:
        with (
            Lease(holder, lease.total_seconds(), limit=call),
            attempt_folder(SUBMIT, job.pk, job.submit_attempts) as folder,
        ):
            submission = backend.submit(dataclasses.replace(request, work_dir=folder))
    except OutcomeUnknownError as exc:
        return _submit_uncertain(
            job, backend, started, _told_as(exc, "SUBMIT_UNCERTAIN"), exc.message
        )
    except PermanentError as exc:
        _settle(job.pk, started)
        code, params = exc.failure("SUBMIT_REFUSED")
        fail(job.pk, code, exc.message, params=params, from_statuses=[Status.QUEUED])
        return "failed"
    except ProviderError as exc:
        _settle(job.pk, started)
        return _submit_retry_later(job, exc)
    if submission.result is not None:
        return _answered(job, started, submission.task_id, submission.result)
    return _submitted(job, backend, started, submission.task_id, request.callback_url is not None)


def _start_attempt(job: GenerationJob) -> datetime | None:
    """Count an attempt and mark it in flight, just before the provider call.

    Returns the mark (the attempt's start), which :func:`_settle` clears with
    the attempt's outcome; None if the job is no longer this worker's.
    """
    now = timezone.now()
    started = GenerationJob.objects.filter(
        pk=job.pk, status=Status.QUEUED, submitting_since__isnull=True
    ).update(submit_attempts=F("submit_attempts") + 1, submitting_since=now, updated_at=now)
    if not started:
        return None
    job.submit_attempts += 1
    return now


def _settle(job_id: Any, started: datetime, counter: str | None = None) -> None:
    """Record the outcome of the attempt marked ``started``, whatever the
    job's status now: ``counter`` (``submit_accepted`` or ``submit_lost``)
    counts it, None is a refusal (no task started). Only once: a worker that
    found the mark after this one's lease ran out counted it as lost."""
    changes: dict[str, Any] = {"submitting_since": None}
    if counter is not None:
        changes[counter] = F(counter) + 1
    GenerationJob.objects.filter(pk=job_id, submitting_since=started).update(**changes)


def _answered(job: GenerationJob, started: datetime, task_id: str, state: TaskState) -> str:
    """A synchronous provider answered with the finished task: apply it and,
    on success, store the images it sent now, from this worker's memory."""
    with transaction.atomic():
        _settle(job.pk, started, "submit_accepted")
        transition(
            job.pk,
            [Status.QUEUED],
            status=Status.SUBMITTED,
            provider_task_id=task_id,
            submitted_at=timezone.now(),
            lease_until=None,
            next_poll_at=None,
            **failures.NO_FAILURE,
        )
        send_after_commit(signals.job_submitted, job.pk)
    outcome = apply_update(job.pk, state, source="submit")
    if outcome == "advanced" and state.status == TaskStatus.SUCCESS:
        from .finalize import finalize

        return finalize(job.pk, state.outputs)
    return outcome


def _submitted(
    job: GenerationJob, backend: Provider, started: datetime, task_id: str, callbacks: bool
) -> str:
    now = timezone.now()
    expect_callback = callbacks and callbacks_arriving(job.provider, now)
    first = scheduling.first_poll_delay(backend.latency(job.resolution), callbacks=expect_callback)
    check_at, countdown = _plan_poll(now, first, job.deadline_at)
    with transaction.atomic():
        _settle(job.pk, started, "submit_accepted")
        moved = transition(
            job.pk,
            [Status.QUEUED],
            status=Status.SUBMITTED,
            provider_task_id=task_id,
            submitted_at=now,
            lease_until=None,
            next_poll_at=check_at,
            **failures.NO_FAILURE,
        )
        if moved and countdown is not None:
            _send_poll(job.pk, 0, countdown)
        if not moved:
            # A report of a task (which carries its id) got here first, or the
            # job was canceled meanwhile. A canceled job keeps this task; a job
            # that has another keeps that one, and this one counts as extra
            # spend (services.budgets).
            GenerationJob.objects.filter(pk=job.pk, provider_task_id__isnull=True).update(
                provider_task_id=task_id
            )
            return "superseded"
        send_after_commit(signals.job_submitted, job.pk)
    return "submitted"


def resubmit_delay(backend: Provider, resolution: str) -> float:
    """Seconds a job waits after a submission whose answer was lost before
    it is submitted again: the upper bound of the provider's latency for the
    resolution, plus ``CALLBACK_GRACE`` of it.

    The lost submission may have started a task. With callbacks configured,
    that task calls back with this job's token within its latency and
    completes the job: no second paid task. Without callbacks nothing can
    find it, but waiting still bounds the spend: attempts whose answers are
    lost (a provider too slow to answer in time, a network dropping
    answers) come no faster than one per latency, not one per sweep, and a
    slow provider gets the time to drain before it is asked again.
    """
    return scheduling.first_poll_delay(backend.latency(resolution), callbacks=True)


def _submit_uncertain(
    job: GenerationJob,
    backend: Provider,
    started: datetime,
    params: dict[str, Any],
    message: str = "",
) -> str:
    """The attempt marked ``started`` may have started a task; no answer came back.

    Resubmitting now could pay twice: the job waits :func:`resubmit_delay`,
    holding its lease so no duplicate message submits it meanwhile, and the
    sweeper submits it again after that unless the task reported first.
    Counted as a lost answer (spend, for budgets). After the last attempt
    the job fails at once without callbacks (nothing can report the task);
    with callbacks it waits the same time for the task's callback first.
    ``params`` say why (:mod:`imagegen.failures`); ``message``: the text
    when they cannot (a provider's error without a code).
    """
    now = timezone.now()
    recorded = failures.failure_fields("SUBMIT_UNCERTAIN", params, message)
    wait = resubmit_delay(backend, job.resolution)
    until = scheduling.clamp(now + scheduling.seconds(wait), job.deadline_at)
    with transaction.atomic():
        _settle(job.pk, started, "submit_lost")
        moved = transition(
            job.pk,
            [Status.QUEUED],
            lease_until=until,
            next_poll_at=until,
            **recorded,
            updated_at=now,  # when the answer was given up on: the wait counts from then
        )
    logger.warning(
        "Submission of job %s has an unknown outcome: %s", job.pk, recorded["error_message"]
    )
    if not moved:
        return "superseded"  # the task reported (or the job was canceled) meanwhile
    if job.submit_attempts >= conf.get_setting("SUBMIT_MAX_ATTEMPTS") and not callback_url(job):
        return _give_up(job.pk)
    return "uncertain"


def _give_up(job_id: Any, error: ProviderError | None = None) -> str:
    """Fail a queued job that used all its submission attempts, naming why:
    the lost answers if there were any, else the last error."""
    job = GenerationJob.objects.get(pk=job_id)
    params: dict[str, Any] = {"attempts": job.submit_attempts}
    if job.submit_lost:
        code = "SUBMIT_ANSWERS_LOST"
        params[failures.COUNT] = job.submit_lost
    else:
        code = (error.code if error is not None else "") or "SUBMIT_FAILED"
        params[failures.TEMPLATE] = "SUBMIT_FAILED"
    if error is not None:
        params.update(_as_cause(error))
    fail(job.pk, code, params=params, from_statuses=[Status.QUEUED])
    return "failed"


def _as_cause(error: ProviderError) -> dict[str, Any]:
    """The parameters that tell ``error`` as the cause of another failure:
    its message's key as ``cause`` and its own parameters; an error whose
    message cannot be rendered from a code is quoted as the detail."""
    code, params = error.failure("")
    if code and failures.render_failure(code, params):
        cause = failures.template_key(code, params)
        params.pop(failures.TEMPLATE, None)
        return {**params, failures.CAUSE: cause}
    return {failures.DETAIL: error.message}


def _told_as(error: ProviderError, code: str) -> dict[str, Any]:
    """The parameters that record ``error`` under another ``code`` (the
    code names the job's state, the message still says what happened)."""
    own, params = error.failure(code)
    if own != code:
        params[failures.TEMPLATE] = failures.template_key(own, params)
    return params


def _submit_retry_later(job: GenerationJob, exc: ProviderError) -> str:
    if job.submit_attempts >= conf.get_setting("SUBMIT_MAX_ATTEMPTS"):
        return _give_up(job.pk, exc)
    # The task retries within MAX_COUNTDOWN; the sweeper comes a lease after
    # that, should the retry message be lost, never before the backoff ends.
    wait = conf.get_setting("MAX_COUNTDOWN") + conf.get_setting("SUBMIT_LEASE")
    code, params = exc.failure("PROVIDER_ERROR")
    transition(
        job.pk,
        [Status.QUEUED],
        lease_until=None,
        next_poll_at=scheduling.clamp(timezone.now() + scheduling.seconds(wait), job.deadline_at),
        **failures.failure_fields(code, params, exc.message),
    )
    raise exc


def reference_image_urls(job: GenerationJob) -> list[str]:
    """URLs of all reference images: given URLs, then stored assets' URLs."""
    urls = list(job.reference_urls)
    if job.mode == Mode.TEXT_TO_IMAGE:
        # create_job refuses references for text-to-image: no query to find none.
        return urls
    base = conf.get_setting("CALLBACK_BASE_URL") or ""
    for image in job.reference_images.all():
        url = image.file.url
        urls.append(urljoin(base, url) if base else url)
    return urls


#: What each report's source says about how the outcome was learnt.
_SOURCES = {
    "callback": Source.CALLBACK,
    "replay": Source.CALLBACK,
    "poll": Source.POLL,
    "submit": Source.SUBMIT,
}


def apply_update(job_id: Any, state: TaskState, *, source: str) -> str:
    """Apply a provider's report (callback or poll) to a job. Returns the outcome:

    ``"advanced"`` when the job moved, ``"stale"`` when the report changes
    nothing (a duplicate, an older state, a job already finished).

    A report for a queued job that knows no task yet comes from the task of
    a submission whose answer was lost (or is not back yet): the job takes
    that task as its own, so it is counted once, not as a lost answer too.
    """
    task_match = Q(provider_task_id=state.task_id) | Q(provider_task_id__isnull=True)
    base = GenerationJob.objects.filter(task_match, pk=job_id)
    now = timezone.now()
    callback = _SOURCES[source] == Source.CALLBACK  # polls only ask about a known task
    if callback and not state.is_terminal and _adopt(job_id, state, now):
        return "advanced"
    if state.status == TaskStatus.PROCESSING:
        moved = base.filter(status=Status.SUBMITTED).update(
            status=Status.RUNNING, started_at=now, updated_at=now
        )
        return "advanced" if moved else "stale"
    if state.status == TaskStatus.SUCCESS:
        lease = timedelta(seconds=conf.get_setting("FINALIZE_LEASE"))
        accepted = [Status.QUEUED, *IN_FLIGHT]
        if conf.get_setting("ACCEPT_LATE_RESULTS"):
            # Only an expired job that knew this task: never another task's result.
            late = Q(status=Status.EXPIRED, provider_task_id=state.task_id)
            base = base.filter(Q(status__in=accepted) | late)
        else:
            base = base.filter(status__in=accepted)
        moved = base.update(
            status=Status.FINALIZING,
            completed_at=None,
            provider_task_id=state.task_id,
            result_urls=[o.url for o in state.outputs if o.url],
            provider_completed_at=_from_ms(state.completed_at_ms) or now,
            provider_cost_time_ms=state.cost_time_ms,
            completed_via=_SOURCES[source],
            lease_until=None,
            # If the finalize message is lost, the sweeper sends it again then.
            next_poll_at=now + lease,
            updated_at=now,
        )
        if not moved:
            return "stale"
        if source != "submit":  # a synchronous answer is stored by the submitting worker
            from ..tasks import finalize_job

            enqueue(finalize_job, str(job_id))
        return "advanced"
    if state.status == TaskStatus.FAILED:
        code, params = state.error_code, dict(state.error_params)
        if not code:
            code, params = "FAILED", params or {failures.DETAIL: state.error_message or None}
        moved = fail(
            job_id,
            code,
            state.error_message,
            params=params,
            from_statuses=[Status.QUEUED, *IN_FLIGHT],
            extra_filter=task_match,
            task_id=state.task_id,
        )
        return "advanced" if moved else "stale"
    return "stale"


def _adopt(job_id: Any, state: TaskState, now: datetime) -> bool:
    """A queued job that knows no task hears of one still running: it follows
    that task from now on, polled by its id if its final callback is lost,
    instead of waiting to be submitted again. True if the job took it."""
    unknowing = GenerationJob.objects.filter(
        pk=job_id, status=Status.QUEUED, provider_task_id__isnull=True
    )
    job = unknowing.first()
    if job is None:
        return False
    latency = get_provider(job.provider).latency(job.resolution)
    check_at, countdown = _plan_poll(
        now, scheduling.first_poll_delay(latency, callbacks=True), job.deadline_at
    )
    running = state.status == TaskStatus.PROCESSING
    with transaction.atomic():
        moved = unknowing.update(
            status=Status.RUNNING if running else Status.SUBMITTED,
            provider_task_id=state.task_id,
            submitted_at=_from_ms(state.created_at_ms) or now,
            started_at=now if running else None,
            lease_until=None,
            next_poll_at=check_at,
            **failures.NO_FAILURE,
            updated_at=now,
        )
        if moved and countdown is not None:
            _send_poll(job_id, job.poll_count, countdown)
        if moved:
            send_after_commit(signals.job_submitted, job_id)
    return bool(moved)


def _plan_poll(now: datetime, delay: float, deadline: datetime) -> tuple[datetime, float | None]:
    """When the sweeper should next look at a job, and the countdown of a poll
    to send now (None: leave the poll to the sweeper).

    A wait up to ``MAX_COUNTDOWN`` goes to Celery as a countdown, so the poll
    is not late by up to a sweep interval; the sweeper's check comes as long
    again after it (at least ``POLL_MIN_INTERVAL``), the fallback if that
    message is lost with a worker. Should both run, the poll count lets only
    one of them ask the provider. Longer waits, and waits past the deadline,
    stay in the database for the sweeper.
    """
    due = now + scheduling.seconds(delay)
    if delay > float(conf.get_setting("MAX_COUNTDOWN")) or due >= deadline:
        return scheduling.clamp(due, deadline), None
    margin = max(delay, float(conf.get_setting("POLL_MIN_INTERVAL")))
    return scheduling.clamp(due + scheduling.seconds(margin), deadline), delay


def _send_poll(job_id: Any, expected_polls: int, countdown: float) -> None:
    from ..tasks import poll_job

    enqueue(poll_job, str(job_id), expected_polls, countdown=countdown)


def poll(job_id: Any, expected_polls: int | None = None) -> str:
    """Ask the provider for a job's state and apply it.

    ``expected_polls`` is the poll count the sweeper saw when it claimed the
    job: a second delivery of the same poll message finds the count moved on
    and does nothing.
    """
    now = timezone.now()
    claim = GenerationJob.objects.filter(
        pk=job_id, status__in=list(IN_FLIGHT), provider_task_id__isnull=False
    )
    if expected_polls is not None:
        claim = claim.filter(poll_count=expected_polls)
    job = claim.first()
    if job is None:
        return "not-claimed"
    backend = get_provider(job.provider)
    waited = (now - (job.submitted_at or job.created_at)).total_seconds()
    delay = scheduling.next_poll_delay(backend.latency(job.resolution), waited)
    check_at, countdown = _plan_poll(now, delay, job.deadline_at)
    if not claim.filter(poll_count=job.poll_count).update(
        poll_count=F("poll_count") + 1, next_poll_at=check_at, updated_at=now
    ):
        return "not-claimed"
    if countdown is not None:
        _send_poll(job.pk, job.poll_count + 1, countdown)
    try:
        state = backend.fetch(job.provider_task_id)
    except PermanentError as exc:
        code, params = exc.failure("POLL_FAILED")
        if exc.status_code == 404:
            params = {failures.TEMPLATE: "TASK_UNKNOWN"}
        fail(job.pk, code, exc.message, params=params, from_statuses=list(IN_FLIGHT))
        return "failed"
    return apply_update(job.pk, state, source="poll")


def fail(
    job_id: Any,
    code: str,
    message: str = "",
    *,
    params: dict[str, Any] | None = None,
    from_statuses: Sequence[str],
    extra_filter: Q | None = None,
    task_id: str | None = None,
) -> bool:
    """Mark a job failed (if it is in ``from_statuses``) and send ``job_failed``.

    ``code`` and ``params`` say why (:mod:`imagegen.failures`: the message
    is rendered from them in each reader's language); ``message`` is the
    text kept when the catalog cannot render them (a provider's own code).

    ``task_id``: the provider task that failed, recorded on a job that did
    not know it yet (the task of a submission whose answer was lost): the
    provider does not charge a failed task, so that attempt stops counting.
    """
    now = timezone.now()
    qs = GenerationJob.objects.filter(pk=job_id, status__in=list(from_statuses))
    if extra_filter is not None:
        qs = qs.filter(extra_filter)
    changes = {"provider_task_id": Coalesce("provider_task_id", Value(task_id))} if task_id else {}
    # One transaction with the webhook outbox rows send_after_commit records.
    with transaction.atomic():
        moved = qs.update(
            **changes,
            status=Status.FAILED,
            **failures.failure_fields(code, params, message),
            completed_at=now,
            next_poll_at=None,
            lease_until=None,
            updated_at=now,
        )
        if moved:
            send_after_commit(signals.job_failed, job_id)
    return bool(moved)


def cancel(job_id: Any) -> bool:
    """Cancel a job that has not finished; False if it already had."""
    # One transaction with the webhook outbox rows send_after_commit records.
    with transaction.atomic():
        moved = transition(
            job_id,
            [Status.QUEUED, *IN_FLIGHT],
            status=Status.CANCELED,
            completed_at=timezone.now(),
            next_poll_at=None,
            lease_until=None,
        )
        if moved:
            send_after_commit(signals.job_canceled, job_id)
    return moved


def expire(job_id: Any) -> bool:
    """Expire a job past its deadline that is still waiting on its provider.

    A queued job whose submissions' answers were lost expired waiting to
    learn whether the provider took it: its message says so.
    """
    now = timezone.now()
    code, params = "EXPIRED", {}
    lost = (
        GenerationJob.objects.filter(pk=job_id, status=Status.QUEUED, submit_lost__gt=0)
        .values_list("submit_lost", flat=True)
        .first()
    )
    if lost:
        code = "SUBMIT_ANSWERS_LOST"
        params = {failures.TEMPLATE: "EXPIRED_ANSWERS_LOST", failures.COUNT: lost}
    # One transaction with the webhook outbox rows send_after_commit records.
    with transaction.atomic():
        moved = (
            GenerationJob.objects.filter(
                pk=job_id, status__in=[Status.QUEUED, *IN_FLIGHT], deadline_at__lte=now
            ).update(
                status=Status.EXPIRED,
                **failures.failure_fields(code, params),
                completed_at=now,
                next_poll_at=None,
                lease_until=None,
                updated_at=now,
            )
            == 1
        )
        if moved:
            send_after_commit(signals.job_expired, job_id)
    return moved


def _from_ms(value: int | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
