import django.db.models.deletion
from django.db import migrations, models
from filer import settings as filer_settings


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("imagegen", "0008_target_field"),
        # filer's image model (FILER_IMAGE_MODEL), as the model field says.
        migrations.swappable_dependency(filer_settings.FILER_IMAGE_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="GeneratedFilerImage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("index", models.PositiveSmallIntegerField(verbose_name="index")),
                ("settings", models.JSONField(default=dict, verbose_name="settings")),
                (
                    "provenance",
                    models.JSONField(blank=True, default=dict, verbose_name="provenance"),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                (
                    "image",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="imagegen_output",
                        to=filer_settings.FILER_IMAGE_MODEL,
                        verbose_name="image",
                    ),
                ),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="filer_images",
                        to="imagegen.generationjob",
                        verbose_name="job",
                    ),
                ),
            ],
            options={
                "verbose_name": "generated filer image",
                "verbose_name_plural": "generated filer images",
                "ordering": ["job", "index"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("job", "index"), name="imagegen_filer_unique_output"
                    )
                ],
            },
        ),
    ]
