from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _

from imagegen.exceptions import ImagegenConfigurationError


class ImagegenFilerConfig(AppConfig):
    name = "imagegen.contrib.filer"
    label = "imagegen_filer"
    verbose_name = _("Image generation for django-filer")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        for required in ("imagegen", "filer", "easy_thumbnails"):
            if not apps.is_installed(required):
                raise ImagegenConfigurationError(
                    f"imagegen.contrib.filer needs {required!r} in INSTALLED_APPS."
                )
        # Registering checks (importing the module does it) and the target of
        # FilerImageFields (imagegen.fields) is all ready() does.
        from imagegen.fields import register

        from . import checks  # noqa: F401
        from .targets import FilerImageTarget

        register(FilerImageTarget)
