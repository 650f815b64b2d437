from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_audit')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MessageKey',
            fields=[
                ('message', fields.OneToOneField('models.Message', source_field='message_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='key', on_delete=OnDelete.CASCADE)),
                ('kek_id', fields.CharField(db_index=True, max_length=128)),
                ('wrapped', fields.BinaryField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('rewrapped_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'message_key', 'app': 'models', 'pk_attr': 'message_id'},
            bases=['Model'],
        ),
    ]
