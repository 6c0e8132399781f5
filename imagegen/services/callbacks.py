"""Receiving provider callbacks.

Each callback is checked (token, body, task id) and then applied through
:func:`imagegen.services.jobs.apply_update` in one transaction that also
records the delivery, so the job's change and the record of what caused it
commit together, with one durable commit per callback. When applying fails
on a database error, that transaction rolls back and the delivery is
recorded on its own with the error, for audit and replay; refused
deliveries (wrong token, unknown job, malformed, another job's task, too
large) are recorded too, with only the first ``REFUSED_BODY_BYTES`` of
their body, so traffic without a token cannot grow the table beyond that
per request (:mod:`.retention` purges old records). What is stored is text
the database accepts whatever arrived: bytes that are not UTF-8, NUL and
lone surrogates are written as backslash escapes (:func:`storable_body`).
Nothing slow happens here: downloading and storing results is the finalize
task's job, so the provider gets its answer in milliseconds.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connections, router, transaction

from .. import conf, log_redaction, tokens
from ..exceptions import ImagegenConfigurationError, MalformedCallbackError, ProviderError
from ..models import GenerationJob, WebhookDelivery
from ..providers import TaskState, get_provider
from .jobs import apply_update

logger = logging.getLogger("imagegen")

Outcome = WebhookDelivery.Outcome

#: Request headers worth keeping for audit; nothing that could carry credentials.
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent")
#: Most bytes (UTF-8) kept of one header's value, and of a delivery's error text.
HEADER_VALUE_BYTES = 256
ERROR_BYTES = 4096

#: Deliveries refused before anything was applied: only the first
#: ``REFUSED_BODY_BYTES`` of their body are kept, and they are purged after
#: ``REFUSED_DELIVERY_RETENTION_DAYS`` (:mod:`.retention`).
REFUSED = (Outcome.FORBIDDEN, Outcome.UNKNOWN_JOB, Outcome.MALFORMED, Outcome.TOO_LARGE)

#: The answer to a callback whose task is another job's (409: it conflicts
#: with that job, and a 4xx tells the provider not to send it again).
FOREIGN_TASK = "The callback's taskId belongs to another job."


@dataclass(frozen=True)
class CallbackResult:
    status_code: int
    outcome: str
    message: str


def record_delivery(
    provider: str,
    job_ref: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
    outcome: str = Outcome.RECEIVED,
    status_code: int | None = None,
    job: GenerationJob | None = None,
    error: str = "",
) -> WebhookDelivery:
    """Store an incoming delivery with its outcome, as text the database
    accepts; a refused delivery keeps only the first ``REFUSED_BODY_BYTES``
    of its body. What was changed to store it is said in ``error``."""
    text, escaped = storable_body(body)
    notes = [error] if error else []
    if escaped:
        notes.append("The body is not UTF-8 text without NUL: stored with backslash escapes.")
    if outcome in REFUSED:
        limit = int(conf.get_setting("REFUSED_BODY_BYTES"))
        if len(text.encode("utf-8")) > limit:
            text = _prefix(text, limit)
            notes.append(f"Body cut to its first {limit} bytes.")
    return WebhookDelivery.objects.create(
        job=job,
        provider=provider[:50],
        job_ref=job_ref[:64],
        remote_addr=remote_addr or None,
        headers={
            name: _prefix(storable_text(headers[name]), HEADER_VALUE_BYTES)
            for name in KEPT_HEADERS
            if name in headers
        },
        body=text,
        outcome=outcome,
        status_code=status_code,
        error=_prefix(storable_text(" ".join(notes)), ERROR_BYTES),
    )


def storable_body(body: bytes) -> tuple[str, bool]:
    """``body`` as text any database stores, and whether it had to be
    escaped: bytes that are not UTF-8 (invalid, overlong, encoded
    surrogates) become ``\\xNN``, and NUL (which PostgreSQL refuses in
    text) becomes ``\\x00``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return storable_text(body.decode("utf-8", "backslashreplace")), True
    return storable_text(text), "\x00" in text


def storable_text(text: str) -> str:
    """``text`` with what a database cannot store as text escaped: NUL as
    ``\\x00``, lone surrogates as ``\\udXXX``."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if _encodable(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits in ``limit`` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def handle_callback(
    provider_name: str,
    job_ref: str,
    token: str,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
) -> CallbackResult:
    """Authenticate, parse and apply one callback, and record it. Never raises
    for bad input; raises :class:`DatabaseError` only when not even the
    record of the delivery could be stored."""

    def record(result: CallbackResult, job: GenerationJob | None, error: str = "") -> None:
        record_delivery(
            provider_name,
            job_ref,
            body=body,
            headers=headers,
            remote_addr=remote_addr,
            outcome=result.outcome,
            status_code=result.status_code,
            job=job,
            error=error,
        )

    checked = _check(provider_name, job_ref, token, body, headers)
    if isinstance(checked, Refusal):
        record(checked.result, checked.job, checked.error)
        return checked.result
    job, state = checked
    try:
        with transaction.atomic():
            applied = apply_update(job.pk, state, source="callback")
            outcome = Outcome.ACCEPTED if applied == "advanced" else Outcome.DUPLICATE
            result = CallbackResult(200, outcome, "OK")
            record(result, job)
    except DatabaseError as exc:
        if isinstance(exc, IntegrityError) and _task_of_another_job(
            provider_name, job.pk, state.task_id
        ):
            # Another job took this task between the check and this job's
            # update (the unique constraint on tasks caught it): the same refusal.
            refusal = _foreign_task(job)
            record(refusal.result, job, refusal.error)
            return refusal.result
        # As text without the token, not exc_info: the error could quote it.
        failure = log_redaction.format_exception(token)
        logger.error("Database error applying callback for job %s:\n%s", job.pk, failure)
        result = CallbackResult(503, Outcome.ERROR, "Temporarily unavailable.")
        record(result, job, failure)
    return result


@dataclass(frozen=True)
class Refusal:
    """A callback that will not be applied, and why."""

    result: CallbackResult
    job: GenerationJob | None = None
    error: str = ""


def _check(
    provider_name: str,
    job_ref: str,
    token: str,
    body: bytes,
    headers: Mapping[str, str],
) -> tuple[GenerationJob, TaskState] | Refusal:
    """The job and the state a callback reports, or why it is refused."""
    job = _job_to_check(provider_name, job_ref)
    if job is None:
        return Refusal(CallbackResult(404, Outcome.UNKNOWN_JOB, "Unknown job."))
    if not tokens.token_matches(token, job.callback_token_hash):
        return Refusal(CallbackResult(403, Outcome.FORBIDDEN, "Invalid token."))
    if storable_body(body)[1]:
        error = "The body is not UTF-8 text without NUL bytes."
        return Refusal(CallbackResult(400, Outcome.MALFORMED, error), job, error)
    try:
        provider = get_provider(provider_name)
        state = provider.parse_callback(body, headers)
    except (MalformedCallbackError, ImagegenConfigurationError) as exc:
        return Refusal(CallbackResult(400, Outcome.MALFORMED, str(exc)), job, str(exc))
    refusal = _refuse_state(job, state)
    if refusal is not None:
        return refusal
    if conf.get_setting("CONFIRM_CALLBACKS"):
        try:
            state = provider.fetch(state.task_id)
        except ProviderError as exc:
            error = f"Confirmation through the status API failed: {exc}"
            return Refusal(
                CallbackResult(503, Outcome.ERROR, "Could not confirm; retry later."), job, error
            )
        return _refuse_state(job, state) or (job, state)
    return job, state


#: What :func:`_check` reads of the job besides its id.
CHECKED_FIELDS = ("provider", "provider_task_id", "callback_token_hash")


def _job_to_check(provider_name: str, job_ref: str) -> GenerationJob | None:
    """Job ``job_ref`` of ``provider_name`` with only its id and
    :data:`CHECKED_FIELDS` loaded, or None (also for a reference that is no
    job id at all).

    One SELECT written out: the ORM's ``filter().only().first()`` costs
    0.41 ms of CPU per callback building it, this 0.12 ms (measured in
    process, issue 17's ingest). The values go through the fields'
    conversions, as the ORM's would.
    """
    alias = router.db_for_read(GenerationJob)
    connection = connections[alias]
    meta, quote = GenerationJob._meta, connection.ops.quote_name
    pk_field, provider_field = meta.pk, meta.get_field("provider")
    try:
        pk = pk_field.to_python(job_ref)
    except ValidationError:
        return None  # no job has such an id; handle_callback never raises for bad input
    # In the model's order, which Model.from_db expects.
    fields = [field for field in meta.concrete_fields if field.attname in CHECKED_FIELDS]
    columns = ", ".join(quote(field.column) for field in fields)
    table, pk_column = quote(meta.db_table), quote(pk_field.column)
    where = f"{pk_column} = %s AND {quote(provider_field.column)} = %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table} WHERE {where}",  # noqa: S608 (quoted names only)
            [
                pk_field.get_db_prep_value(pk, connection),
                provider_field.get_db_prep_value(provider_name, connection),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    # The id is the one asked for, as the ORM gives it (SQLite stores UUIDs as hex).
    names = [pk_field.attname, *(field.attname for field in fields)]
    return GenerationJob.from_db(alias, names, (pk, *row))


def _refuse_state(job: GenerationJob, state: TaskState) -> Refusal | None:
    """Why a parsed report may not be applied to ``job``, if it may not."""
    if not all(_encodable(text) and "\x00" not in text for text in _texts(state)):
        # json.loads turns "\u0000" and "\ud800" into text no database stores.
        error = "The callback carries NUL or lone surrogate characters."
        return Refusal(CallbackResult(400, Outcome.MALFORMED, error), job, error)
    if state.task_id != job.provider_task_id and _task_of_another_job(
        job.provider, job.pk, state.task_id
    ):
        # Whatever this job's state, with or without a task: taking the task
        # would steal the other job's result (and break the unique constraint).
        # A callback for the job's own task skips the query (one round trip of
        # the usual callback): the unique constraint on (provider, task) says
        # no other job holds it.
        return _foreign_task(job)
    if job.provider_task_id and state.task_id != job.provider_task_id:
        # Same job token, other task: an earlier submission whose answer was
        # lost also went through. It is logged so duplicate spend is visible.
        error = "The callback's taskId is not this job's task (duplicate submission?)."
        return Refusal(CallbackResult(400, Outcome.MALFORMED, error), job, error)
    return None


def _texts(value: Any) -> Iterator[str]:
    """Every string in a report (its fields and its outputs')."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from _texts(getattr(value, field.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _texts(item)


def _task_of_another_job(provider: str, job_id: Any, task_id: str) -> bool:
    """Whether ``task_id`` is another job's (through the unique constraint's index)."""
    return (
        GenerationJob.objects.filter(provider=provider, provider_task_id=task_id)
        .exclude(pk=job_id)
        .exists()
    )


def _foreign_task(job: GenerationJob) -> Refusal:
    return Refusal(CallbackResult(409, Outcome.MALFORMED, FOREIGN_TASK), job, FOREIGN_TASK)


def replay(delivery: WebhookDelivery) -> CallbackResult:
    """Apply a stored delivery's body again (an operator's action after a fix)."""
    job = delivery.job
    if job is None:
        return CallbackResult(404, Outcome.UNKNOWN_JOB, "The delivery has no job.")
    provider = get_provider(job.provider)
    try:
        state = provider.parse_callback(delivery.body.encode("utf-8"), delivery.headers)
    except MalformedCallbackError as exc:
        return CallbackResult(400, Outcome.MALFORMED, str(exc))
    refusal = _refuse_state(job, state)
    if refusal is not None:
        return refusal.result
    try:
        with transaction.atomic():
            applied = apply_update(job.pk, state, source="replay")
    except IntegrityError:
        if not _task_of_another_job(job.provider, job.pk, state.task_id):
            raise
        return _foreign_task(job).result
    outcome = Outcome.ACCEPTED if applied == "advanced" else Outcome.DUPLICATE
    return CallbackResult(200, outcome, "OK")
