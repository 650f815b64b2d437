from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_security_gates')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Message',
            name='receipt',
            field=fields.TextField(null=True, unique=False),
        ),
    ]
