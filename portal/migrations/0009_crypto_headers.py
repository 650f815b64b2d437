from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_message_keys')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Attachment',
            name='crypto_header',
            field=fields.BinaryField(null=True),
        ),
        ops.AlterModelOptions(
            name='MessageKey',
            options={'table': 'message_key', 'app': 'models', 'pk_attr': 'message_id'},
        ),
        ops.AddField(
            model_name='Upload',
            name='crypto_header',
            field=fields.BinaryField(null=True),
        ),
    ]
