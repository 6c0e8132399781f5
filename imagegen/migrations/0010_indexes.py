"""Indexes for a field's job history and for the purge of discarded files."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("imagegen", "0009_runs_lineage"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="generatedimage",
            index=models.Index(
                condition=models.Q(
                    ("review_status", "discarded"), models.Q(("file", ""), _negated=True)
                ),
                fields=["reviewed_at"],
                name="imagegen_image_discarded_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="generationjob",
            index=models.Index(
                fields=["target_content_type", "target_object_id", "target_field", "-created_at"],
                name="imagegen_job_field_idx",
            ),
        ),
    ]
