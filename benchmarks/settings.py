"""Settings of the benchmarks: the example site's, on PostgreSQL and Redis.

``IMAGEGEN_BENCH_SETTINGS`` (JSON) adds IMAGEGEN settings;
``IMAGEGEN_BENCH_DATABASE`` (default ``imagegen_bench``, created if missing)
and ``IMAGEGEN_BENCH_REDIS_URL`` (default Redis database 14) select them.
"""

import json
import os

from project.settings import *  # noqa: F403

DEBUG = False
# DEBUG off as in production, on the sandbox: chosen explicitly (check imagegen.E026).
IMAGEGEN_ALLOW_SANDBOX = True
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("IMAGEGEN_BENCH_DATABASE", "imagegen_bench"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        # Persistent connections, as a production site runs: opening a
        # PostgreSQL connection per request costs more than a callback.
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
}
CELERY_BROKER_URL = os.environ.get("IMAGEGEN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# The example site's SQLite broker (its default) is not the one measured here.
CELERY_BROKER_TRANSPORT = None
CELERY_WORKER_POOL = "prefork"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = "imagegen-bench"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
# The webhook benchmark adds a bare view beside the site's URLs.
ROOT_URLCONF = "benchmarks.urls"
# A benchmark's own IMAGEGEN settings (JSON), shared with the servers it starts.
IMAGEGEN = {**IMAGEGEN, **json.loads(os.environ.get("IMAGEGEN_BENCH_SETTINGS", "{}"))}  # noqa: F405
