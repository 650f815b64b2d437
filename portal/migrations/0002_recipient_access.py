from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AccessCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('recipient', fields.ForeignKeyField('models.Recipient', source_field='recipient_id', db_constraint=True, to_field='id', related_name='access_codes', on_delete=OnDelete.CASCADE)),
                ('code_hash', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivery', fields.ForeignKeyField('models.OutboxItem', source_field='delivery_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'access_code', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A one-time code (an SMS PIN, say) that a verification provider issued to a recipient.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Message',
            name='reply_to',
            field=fields.ForeignKeyField('models.Message', source_field='reply_to_id', null=True, db_constraint=True, to_field='id', related_name='replies', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Recipient',
            name='failed_attempts',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Recipient',
            name='locked_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Recipient',
            name='notification',
            field=fields.ForeignKeyField('models.OutboxItem', source_field='notification_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Recipient',
            name='opened_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
