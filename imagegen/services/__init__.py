"""imagegen's service layer: the only code that changes a job's state.

Views, admin actions, tasks and commands call these functions; each state
change is a conditional UPDATE, so racing callers cannot both win.
"""

from . import budgets, reports, reviews, thumbnails
from .callbacks import CallbackResult, handle_callback, replay
from .finalize import fetch_policy, finalize
from .jobs import (
    apply_update,
    callback_url,
    cancel,
    create_job,
    expire,
    fail,
    job_settings,
    poll,
    retry,
    submit,
)
from .sweep import sweep

__all__ = [
    "CallbackResult",
    "apply_update",
    "budgets",
    "callback_url",
    "cancel",
    "create_job",
    "expire",
    "fail",
    "fetch_policy",
    "finalize",
    "handle_callback",
    "job_settings",
    "poll",
    "replay",
    "reports",
    "retry",
    "reviews",
    "submit",
    "sweep",
    "thumbnails",
]
