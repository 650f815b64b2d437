from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0010_malware_scan")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="Attachment",
            name="filename",
            field=fields.TextField(unique=False),
        ),
        ops.AlterField(
            model_name="Message",
            name="subject",
            field=fields.TextField(default="", unique=False),
        ),
        ops.AlterField(
            model_name="Recipient",
            name="phone",
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AlterField(
            model_name="Upload",
            name="filename",
            field=fields.TextField(unique=False),
        ),
    ]
