from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImagegenConfig(AppConfig):
    name = "imagegen"
    verbose_name = _("Image generation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering checks is all ready() does; importing the module does it.
        from . import checks  # noqa: F401
