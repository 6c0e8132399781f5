"""A Celery broker in a SQLite file, for development: no server to run.

kombu's SQLAlchemy transport on a SQLite file, made safe for the several
processes of a site on one machine (web server, worker, beat, commands). The
example site and docs/install.md select it with::

    CELERY_BROKER_URL = "sqlite:///path/to/celery-broker.sqlite3"
    CELERY_BROKER_TRANSPORT = "imagegen.sqlite_broker:Transport"
    CELERY_WORKER_POOL = "threads"

It needs the ``sqlalchemy`` extra. kombu's transport
claims each message in one SQLite write transaction (BEGIN IMMEDIATE), so two
consumers never take the same one, and since kombu 5.7 a publish that fails
raises instead of dropping the message; what it lacks for several processes,
this adds:

- a connection per use (SQLAlchemy's ``NullPool``) instead of a pool, whose
  connections a forked process would be handed: a SQLite connection must not
  cross a fork;
- a 30 s wait for another process's write lock (SQLite's ``timeout``; the
  driver's default is 5 s) before "database is locked";
- another try when processes opening a new file at once both create its
  tables or its queue: the loser would fail, and a worker failing so stops
  with "Unrecoverable error: IntegrityError";
- delivered messages deleted: kombu keeps each one, marked invisible and never
  read again, so the file would grow by about 1 KB a task for ever;
- a poll every 0.2 s (kombu's 1 s delays every step of a job by up to a
  second, and caps a busy worker at its concurrency in tasks a second), and
  the ``polling_interval`` transport option, which kombu's transport would
  hand to ``create_engine()`` and fail.

Other transport options are passed to SQLAlchemy's ``create_engine()``, as
with kombu's transport.

The file keeps SQLite's rollback journal. Write-ahead logging made the broker
twice as fast on a busy machine, but with a connection per use the last
connection to close cleans up the log under an exclusive lock, and a
connection opening meanwhile fails with "database is locked" without waiting
(SQLite's documentation of WAL mode, "Sometimes Queries Return SQLITE_BUSY"):
six processes opening a new file at once met it.

Run workers on the threads pool (``CELERY_WORKER_POOL``) or solo, not
prefork: SQLite keeps lock state per process, so a pool process forked while
the worker's consumer thread held the file's lock (prefork replaces its
processes when one exits, is killed at a time limit or reaches
max_tasks_per_child) can never write to the file, and its tasks' messages
fail with "database is locked".
"""

from __future__ import annotations

from typing import Any

from kombu.transport import sqlalchemy
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

#: Transport options that are kombu's, not create_engine()'s.
KOMBU_OPTIONS = frozenset(
    {
        "queue_tablename",
        "message_tablename",
        "callback",
        "errback",
        "max_retries",
        "interval_start",
        "interval_step",
        "interval_max",
        "retry_errors",
        "polling_interval",
    }
)
ENGINE_DEFAULTS = {"poolclass": NullPool, "connect_args": {"timeout": 30}}
#: Tries at creating the tables of a new file: each failure means another
#: process created one of its tables or indexes in the meantime.
CREATE_TRIES = 8


class Channel(sqlalchemy.Channel):
    _engines: dict[str, Any] = {}  # not shared with kombu's own transport

    def _engine_from_config(self) -> Engine:
        client = self.connection.client
        options = {
            key: value
            for key, value in client.transport_options.items()
            if key not in KOMBU_OPTIONS
        }
        return create_engine(client.hostname, **{**ENGINE_DEFAULTS, **options})

    def _open(self) -> Any:
        for _ in range(CREATE_TRIES - 1):
            try:
                return super()._open()
            except OperationalError as exc:
                # Created by another process since the check: try again.
                if "already exists" not in str(exc):
                    raise
        return super()._open()

    def _get_or_create(self, queue: str) -> Any:
        try:
            return super()._get_or_create(queue)
        except IntegrityError:
            # The queue's row was inserted by another process since the check.
            self.session.rollback()
            return super()._get_or_create(queue)

    def _get(self, queue: str) -> Any:
        payload = super()._get(queue)  # raises Empty when there is none
        message = self.message_cls
        self.session.query(message).filter(message.visible.is_(False)).delete(
            synchronize_session=False
        )
        self.session.commit()
        return payload


class Transport(sqlalchemy.Transport):
    Channel = Channel
    polling_interval = 0.2
