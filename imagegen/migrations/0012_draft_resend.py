"""The sweep re-sends alt text drafts whose task message was lost."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("imagegen", "0011_alt_text_drafts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="generatedimage",
            name="alt_text_draft_requested_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="generatedimage",
            index=models.Index(
                condition=models.Q(("alt_text_draft_state", "pending")),
                fields=["alt_text_draft_requested_at"],
                name="imagegen_image_drafting_idx",
            ),
        ),
    ]
