from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_uploads')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Guard',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=200)),
                ('uses', fields.BigIntField(default=0)),
                ('touched_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'guard', 'app': 'models', 'pk_attr': 'key'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebSession',
            fields=[
                ('id_hash', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('seen_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'web_session', 'app': 'models', 'pk_attr': 'id_hash'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Message',
            name='inflight_bytes',
            field=fields.BigIntField(default=0),
        ),
    ]
