"""The example site's Celery app: ``celery -A project worker`` / ``beat``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Celery makes an app "current" only in the thread that created it; web
# server threads would otherwise send shared tasks through a fallback app.
app.set_default()
