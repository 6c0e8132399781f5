from django.apps import AppConfig


class ContentAppConfig(AppConfig):
    name = "tests.content_app"
    label = "imagegen_content_tests"
    default_auto_field = "django.db.models.BigAutoField"
