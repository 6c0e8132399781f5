from django.apps import AppConfig


class FilerAppConfig(AppConfig):
    name = "tests.filer_app"
    label = "imagegen_filer_tests"
    default_auto_field = "django.db.models.BigAutoField"
