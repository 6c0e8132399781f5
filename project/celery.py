"""The example site's Celery app: ``celery -A project worker`` / ``beat``."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# The example site's embedded broker: a broker URL sqlite:///<file> (the default
# in settings.py) selects project/broker.py's transport, imported only then.
TRANSPORT_ALIASES.setdefault("sqlite", "project.broker:Transport")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Celery makes an app "current" only in the thread that created it; web
# server threads would otherwise send shared tasks through a fallback app.
app.set_default()
