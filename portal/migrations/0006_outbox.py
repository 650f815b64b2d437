from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_receipts')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboxItem',
            name='claim_token',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='OutboxItem',
            name='mail_message_id',
            field=fields.CharField(default='', max_length=255),
        ),
    ]
