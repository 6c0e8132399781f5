"""``manage.py imagegen doctor``: check the running system, one line per check.

Settings are what ``manage.py check`` reads; the doctor asks the processes
themselves, each within ``timeout`` seconds: the database, the broker, a
worker (a task round trip), the sweeper (when it last ran), the callback URL
(an HTTP round trip), the storage (a file written, read, fetched at its URL
and deleted) and every provider editors may choose (an authenticated
request; APIXO's balance). Lines are yielded as checks finish. The levels
are in :mod:`.findings`; docs/commands.md lists every line.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.core import checks

from .callbacks import check_callbacks
from .celery_app import project_app
from .files import check_storage
from .findings import FAIL, INFO, OK, WARN, Finding, brief
from .processes import check_broker, check_database, check_sweeper, check_worker
from .providers import check_providers

#: Seconds each network check may take, unless ``--timeout`` says otherwise.
DEFAULT_TIMEOUT = 10.0


def run_doctor(timeout: float = DEFAULT_TIMEOUT) -> Iterator[Finding]:
    """Every check, in order; a check that needs another's success says
    "not checked" when that one failed."""
    yield from check_system()
    database = check_database()
    yield database
    app = project_app()
    broker = check_broker(app, timeout)
    yield broker
    if database.failed:
        yield Finding("worker", INFO, "not checked: the database is not ready.")
        yield Finding("sweeper", INFO, "not checked: the database is not ready.")
    else:
        worker = check_worker(app, timeout, reachable=not broker.failed)
        yield worker
        yield check_sweeper(app, worker_ok=worker.level == OK, timeout=timeout)
    yield check_callbacks(timeout)
    yield check_storage(timeout)
    yield from check_providers(timeout)


def check_system() -> Iterator[Finding]:
    """Django's system checks, as ``manage.py check`` runs them: imagegen's
    messages one line each, errors failing."""
    try:
        messages = checks.run_checks()
    except Exception as exc:
        yield Finding("checks", FAIL, f"the system checks crashed: {brief(exc)}.")
        return
    ours = [
        m for m in messages if (m.id or "").startswith("imagegen.") and m.level >= checks.WARNING
    ]
    if not ours:
        yield Finding("checks", OK, "Django's system checks report nothing about imagegen.")
    for message in ours:
        text = f"{message.id} {message.msg}"
        if message.hint:
            text += f" ({message.hint})"
        yield Finding("checks", FAIL if message.is_serious() else WARN, text)
