"""The target's field a job was made for (imagegen.fields): the field's
history lists the job, and a job made on an add form keeps its model and
field until the saved object's id links it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("imagegen", "0007_hostile_input"),
    ]

    operations = [
        migrations.AddField(
            model_name="generationjob",
            name="target_field",
            field=models.CharField(blank=True, max_length=100, verbose_name="target field"),
        ),
    ]
