from django.apps import AppConfig


class WagtailAppConfig(AppConfig):
    name = "tests.wagtail_app"
    label = "imagegen_wagtail_tests"
    default_auto_field = "django.db.models.BigAutoField"
