from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImagegenConfig(AppConfig):
    name = "imagegen"
    verbose_name = _("Image generation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering checks and signal receivers is all ready() does.
        from . import checks  # noqa: F401
        from .webhooks import events

        events.connect()
