"""Runs (jobs started together), a job's lineage (made from) and error parameters, and the index of the callback records' retention purge."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("imagegen", "0008_target_field"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="GenerationRun",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("candidates", "Candidates"),
                            ("compare", "Comparison"),
                            ("fill", "Bulk fill"),
                        ],
                        max_length=20,
                        verbose_name="kind",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                (
                    "target_field",
                    models.CharField(blank=True, max_length=100, verbose_name="target field"),
                ),
                ("settings", models.JSONField(blank=True, default=dict, verbose_name="settings")),
            ],
            options={
                "verbose_name": "generation run",
                "verbose_name_plural": "generation runs",
                "ordering": ["-created_at"],
            },
        ),
        migrations.AddField(
            model_name="generationjob",
            name="error_params",
            field=models.JSONField(blank=True, default=dict, verbose_name="error parameters"),
        ),
        migrations.AddField(
            model_name="generationjob",
            name="source_job",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="derived_jobs",
                to="imagegen.generationjob",
                verbose_name="made from",
            ),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(
                fields=["outcome", "received_at"], name="imagegen_delivery_purge_idx"
            ),
        ),
        migrations.AddField(
            model_name="generationrun",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="created by",
            ),
        ),
        migrations.AddField(
            model_name="generationrun",
            name="target_content_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AddField(
            model_name="generationjob",
            name="run",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="jobs",
                to="imagegen.generationrun",
                verbose_name="run",
            ),
        ),
    ]
