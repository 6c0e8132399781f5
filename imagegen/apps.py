from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImagegenConfig(AppConfig):
    name = "imagegen"
    verbose_name = _("Image generation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering checks, signal receivers and log filters is all ready() does.
        from . import checks, log_redaction  # noqa: F401
        from .services import fill, slots
        from .webhooks import events

        events.connect()
        fill.connect()
        slots.connect()
        # The callback's token reaches Django's request logs through the path.
        log_redaction.install()
