"""Alt text drafting (IMAGEGEN["DESCRIBER"]) and the language a job was asked in."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("imagegen", "0010_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="generatedimage",
            name="alt_text_draft",
            field=models.TextField(blank=True, verbose_name="drafted alt text"),
        ),
        migrations.AddField(
            model_name="generatedimage",
            name="alt_text_draft_language",
            field=models.CharField(blank=True, max_length=15, verbose_name="drafted in language"),
        ),
        migrations.AddField(
            model_name="generatedimage",
            name="alt_text_draft_state",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Not drafted"),
                    ("pending", "Being drafted"),
                    ("ready", "Drafted"),
                    ("failed", "Could not be drafted"),
                ],
                default="",
                max_length=10,
                verbose_name="alt text draft",
            ),
        ),
        migrations.AddField(
            model_name="generatedimage",
            name="decorative",
            field=models.BooleanField(default=False, verbose_name="decorative"),
        ),
        migrations.AddField(
            model_name="generationjob",
            name="language",
            field=models.CharField(blank=True, max_length=15, verbose_name="language"),
        ),
    ]
