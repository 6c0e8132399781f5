from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _

from imagegen.exceptions import ImagegenConfigurationError


class ImagegenWagtailConfig(AppConfig):
    name = "imagegen.contrib.wagtail"
    label = "imagegen_wagtail"
    verbose_name = _("Image generation for Wagtail")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The Wagtail views reuse imagegen's admin form, which imports the
        # Django admin: say so now rather than fail on an obscure lookup later.
        for required in ("imagegen", "django.contrib.admin", "wagtail.images"):
            if not apps.is_installed(required):
                raise ImagegenConfigurationError(
                    f"imagegen.contrib.wagtail needs {required!r} in INSTALLED_APPS."
                )
        # Registering checks (importing the module does it) and the target of
        # Wagtail image fields (imagegen.fields) is all ready() does besides.
        from imagegen.fields import register

        from . import checks  # noqa: F401
        from .targets import WagtailImageTarget

        register(WagtailImageTarget)
