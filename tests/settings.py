"""Test settings: the example site's, on PostgreSQL or SQLite.

``IMAGEGEN_TEST_DB=postgres`` (the default when PostgreSQL answers on
127.0.0.1:5432, and always under CI=true) or ``sqlite``.
"""

import json
import os
import socket
import tempfile

from kombu import Queue

from project.settings import *  # noqa: F403

PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT", "5432"))


def reachable(host: str, port: int) -> bool:
    """Whether a TCP server answers at host:port (shared with conftest)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


_default_db = (
    "postgres" if os.environ.get("CI") == "true" or reachable(PG_HOST, PG_PORT) else "sqlite"
)
TEST_DB = os.environ.get("IMAGEGEN_TEST_DB", _default_db)

if TEST_DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": PG_HOST,
            "PORT": str(PG_PORT),
            "TEST": {"NAME": f"test_imagegen_{os.getpid()}"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.gettempdir(), "imagegen-test.sqlite3"),
            # A file, not shared-cache memory: worker and live-server threads
            # then wait on locks (timeout) instead of failing with "table is locked".
            "TEST": {
                "NAME": os.path.join(tempfile.gettempdir(), f"imagegen-test-{os.getpid()}.sqlite3")
            },
            # IMMEDIATE: a transaction takes the write lock when it begins, so
            # two processes never deadlock upgrading read locks ("database is
            # locked" at once, whatever the timeout) when workers, the live
            # server and the test write at the same time.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }

DEBUG = False
# Models with generable fields (imagegen.fields): an image file, a FK to GeneratedImage.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.content_app"]  # noqa: F405
MEDIA_ROOT = tempfile.mkdtemp(prefix="imagegen-test-media-")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BROKERS = {
    "redis": os.environ.get("IMAGEGEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "amqp": os.environ.get("IMAGEGEN_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
TEST_BROKER = os.environ.get("IMAGEGEN_TEST_BROKER", "redis")
CELERY_BROKER_URL = BROKERS[TEST_BROKER]
# The example site's SQLite broker (its default) is not the one the tests use.
CELERY_BROKER_TRANSPORT = None
CELERY_WORKER_POOL = "prefork"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# A queue of this run's own, so two test runs on one broker (CI's two passes, a
# developer's second terminal) never consume each other's messages. Worker
# subprocesses of the fault tests get the name through IMAGEGEN_TEST_QUEUE.
# RabbitMQ drops the queue an hour after its last use.
TEST_QUEUE = os.environ.get("IMAGEGEN_TEST_QUEUE") or f"imagegen-test-{os.getpid()}"
CELERY_TASK_DEFAULT_QUEUE = TEST_QUEUE
CELERY_TASK_QUEUES = (
    Queue(TEST_QUEUE, routing_key=TEST_QUEUE, queue_arguments={"x-expires": 3_600_000}),
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
IMAGEGEN = {
    "PROVIDER": "sandbox",
    "PROVIDERS": {"sandbox": {"BASE_URL": "http://127.0.0.1:9/api/v1"}},
}
# The tests run on the sandbox with DEBUG off (pytest-django's default), and
# replace IMAGEGEN at will: the choice sits beside it (check imagegen.E026).
IMAGEGEN_ALLOW_SANDBOX = True

# A Celery worker started as a subprocess by the fault tests runs on these
# settings too; the test hands it what it changed (the test database's name,
# MEDIA_ROOT, IMAGEGEN, STORAGES...) as JSON, applied last.
for _name, _value in json.loads(os.environ.get("IMAGEGEN_TEST_OVERRIDES", "{}")).items():
    globals()[_name] = _value
