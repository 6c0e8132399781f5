"""Settings of the example site, driven by environment variables.

With nothing set it runs on the embedded defaults: SQLite, files under
var/media, Celery on a broker kept in a SQLite file under var/ (no server
needed) and the local sandbox as the provider. See README.md for Redis,
PostgreSQL, S3 and APIXO.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("IMAGEGEN_VAR_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-change-me-in-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "imagegen",
    # An example of generating into a model's own image field (docs/fields.md).
    "project.articles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Each reader's language (the browser's Accept-Language, Django's language
    # cookie), among LANGUAGES: after the session middleware, before the common one
    # (docs/translations.md).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    """``sqlite:///path`` or ``postgres://user:pass@host:port/name``."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parts.path[1:]) or ":memory:",
            # The site, the worker and beat write to one file: transactions
            # take the write lock when they begin (no upgrade deadlocks) and
            # wait for it rather than fail.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path[1:]),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError(f"Unsupported DATABASE_URL scheme {parts.scheme!r}")


DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    )
}

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
# The languages imagegen ships (docs/translations.md): a reader whose browser asks
# for another gets LANGUAGE_CODE rather than pages half in English.
LANGUAGES = [
    ("en", "English"),
    ("fr", "Français"),
    ("de", "Deutsch"),
]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("IMAGEGEN_MEDIA_ROOT", VAR_DIR / "media"))
# Serve MEDIA_ROOT from Django even with DEBUG off (the example site has no web server).
SERVE_MEDIA = os.environ.get("IMAGEGEN_SERVE_MEDIA", "1") == "1"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if os.environ.get("IMAGEGEN_S3_BUCKET"):
    STORAGES["imagegen"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["IMAGEGEN_S3_BUCKET"],
            "endpoint_url": os.environ.get("IMAGEGEN_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            # Deterministic keys rely on overwriting (RELIABILITY.md, storage traps).
            "file_overwrite": True,
            "querystring_auth": True,
        },
    }

# Celery: by default a broker kept in a SQLite file under VAR_DIR, no server
# (imagegen.sqlite_broker); Redis or RabbitMQ through the URL. SQLite creates the
# file but not its folder (nor the database's, also there).
VAR_DIR.mkdir(parents=True, exist_ok=True)
CELERY_BROKER_URL = os.environ.get(
    "CELERY_BROKER_URL", f"sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
)
if CELERY_BROKER_URL.startswith("sqlite:"):
    CELERY_BROKER_TRANSPORT = "imagegen.sqlite_broker:Transport"
    # SQLite keeps its lock state per process, and a process forked while another
    # thread of its parent held the file's lock can never write to it: prefork
    # forks replacement pool processes while the worker polls the broker.
    CELERY_WORKER_POOL = "threads"
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "imagegen-sweep": {
        "task": "imagegen.sweep",
        "schedule": float(os.environ.get("IMAGEGEN_SWEEP_INTERVAL", "5")),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

_apixo_key = os.environ.get("APIXO_API_KEY")
IMAGEGEN = {
    "PROVIDER": "apixo" if _apixo_key else "sandbox",
    "PROVIDERS": {
        "apixo": {"API_KEY": _apixo_key},
        "sandbox": {
            "BASE_URL": os.environ.get("IMAGEGEN_SANDBOX_URL", "http://127.0.0.1:8765/api/v1"),
            # The sandbox is fast; poll on its time scale, not APIXO's.
            "LATENCY": {"1k": (1, 5), "2k": (1, 6), "4k": (2, 8)},
        },
    },
    "CALLBACK_BASE_URL": os.environ.get("IMAGEGEN_CALLBACK_BASE_URL") or None,
    # The Generate control beside the example articles' cover image (docs/fields.md).
    "IMAGE_FIELDS": {
        "articles.Article.cover": {
            "prompt": "Editorial photo: {title}. {summary}",
            "shape": (1200, 630),
            "candidates": 2,
            "alt_field": "cover_alt",
        },
    },
}
# The example site is for development: its sandbox stays usable with
# DJANGO_DEBUG=0 (as the benchmarks and the tests, which inherit this, run).
# A production site leaves it unset: system check imagegen.E026.
IMAGEGEN_ALLOW_SANDBOX = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"imagegen": {"handlers": ["console"], "level": "INFO"}},
}
