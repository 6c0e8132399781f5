"""What an editor is told about a job beyond its status: a retry it waits
for after a temporary provider error, a refusal by the provider's content
policy, what canceling it still costs. Shared by the status JSON and the
admin, so the page and its live updates say the same."""

from __future__ import annotations

from typing import Any

from . import conf, failures
from .choices import Status
from .models import GenerationJob

#: Failures that are refusals by a provider's content policy (moderation):
#: the same prompt would be refused again, so the editor is offered to edit
#: it rather than a retry. APIXO's task failure codes and its HTTP 403
#: (``HTTP_403``; ``403`` in rows recorded before failures had parameters),
#: OpenAI's ``MODERATION`` (imagegen.providers.openai), whose own 403 says
#: access to the model was refused (``OPENAI_HTTP_403``): not a refusal of
#: the prompt. Matched against the failure's message key
#: (:func:`imagegen.failures.template_key`).
MODERATION_CODES = frozenset(
    {
        "MODERATION",
        "CONTENT_VIOLATION",
        "NSFW_DETECTED",
        "SensitiveContentDetected",
        "HTTP_403",
        "403",
    }
)


def refused_by_moderation(job: GenerationJob) -> bool:
    """Whether ``job`` failed because the provider's content policy refused it."""
    if job.status != Status.FAILED:
        return False
    params = job.error_params if isinstance(job.error_params, dict) else {}
    return failures.template_key(job.error_code, params) in MODERATION_CODES


def waiting_retry(job: GenerationJob) -> dict[str, int] | None:
    """``{"attempt": n, "of": m}`` while a queued job waits to submit again
    after an attempt that failed (a temporary provider error, an answer
    that never came); None otherwise. ``n`` is the attempt to come."""
    if job.status != Status.QUEUED or not job.submit_attempts or not job.error_code:
        return None
    limit = int(conf.get_setting("SUBMIT_MAX_ATTEMPTS"))
    return {"attempt": min(job.submit_attempts + 1, limit), "of": limit}


def may_be_charged_if_canceled(job: GenerationJob) -> bool:
    """Whether canceling ``job`` now may still cost money: the provider
    accepted it (it has a task), or a submission's answer was lost or is
    still awaited (the provider may have accepted and charged it). Budgets
    count such a canceled job (:mod:`imagegen.services.budgets`)."""
    return bool(
        job.provider_task_id
        or job.submit_lost
        or job.submit_accepted
        or job.submitting_since is not None
    )


def job_flags(job: GenerationJob) -> dict[str, Any]:
    """The three facts above, as the status JSON carries them."""
    return {
        "waiting_retry": waiting_retry(job),
        "refused_by_moderation": refused_by_moderation(job),
        "cancel_may_charge": may_be_charged_if_canceled(job),
    }
