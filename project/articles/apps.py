from django.apps import AppConfig


class ArticlesConfig(AppConfig):
    name = "project.articles"
    label = "articles"
    default_auto_field = "django.db.models.BigAutoField"
