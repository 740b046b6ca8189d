"""Migration operations for removing a field or a model in two releases.

Several deployments share one database (Divio mirrors, the old and new
instances of a rolling update), so a column can only be dropped once no
deployment runs code that uses it.  The release that stops using a field
therefore cannot drop its column too: every deployment's ``migrate`` would
be refused, each one's old code still using it.  These operations split
Django's RemoveField and DeleteModel in two, and keep
``makemigrations --check`` green all along:

Release N (the code stops using the field): makemigrations writes
``migrations.RemoveField(model_name="person", name="weight")``; make it

    from rollguard_django.operations import StopUsingField
    ...
        StopUsingField(model_name="person", name="weight"),

The field leaves Django's migration state now (so makemigrations sees no
change), the column stays in the database (so older code keeps working).
A NOT NULL column loses its NOT NULL, so that release N, which no longer
writes it, can insert rows.

Release N+1, once every deployment runs N (``makemigrations shop --empty -n
drop_person_weight``):

    from rollguard_django.operations import DropColumn
    ...
        DropColumn(model_name="person", column="weight"),

sends what RemoveField would have sent (``ALTER TABLE ... DROP COLUMN ...
CASCADE``); rollguard lets it through because no live version uses the
column any more.  ``StopUsingModel`` and ``DropTable`` do the same for a
model (and DropTable for the join table of a removed many-to-many field).

The drops cannot be reversed (the data is gone): migrating backwards past
one raises IrreversibleError, as a RunSQL without reverse_sql does.
"""
from django.db import migrations, router
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.operations.base import Operation


class StopUsingField(Operation):
    """RemoveField in Django's state only: the column stays (nullable) for
    the deployments that still run older code.  DropColumn drops it in a
    later release.

    Not a subclass of RemoveField: the migration optimizer (squashmigrations)
    would cancel an AddField against it, and the column would then never be
    created in a fresh database.
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name, name):
        self.model_name = model_name
        self.name = name

    def deconstruct(self):
        return (self.__class__.__name__, [], {"model_name": self.model_name, "name": self.name})

    def state_forwards(self, app_label, state):
        migrations.RemoveField(self.model_name, self.name).state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        field = model._meta.get_field(self.name)
        if self._keeps_not_null(field):
            schema_editor.execute(self._alter_null(schema_editor, model, field, "DROP"))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        field = model._meta.get_field(self.name)
        if self._keeps_not_null(field):
            schema_editor.execute(self._alter_null(schema_editor, model, field, "SET"))

    @staticmethod
    def _keeps_not_null(field):
        """A plain NOT NULL column (not a key, not many-to-many, not generated)."""
        return bool(field.concrete and field.column and not field.null and not field.primary_key
                    and not field.many_to_many and not getattr(field, "generated", False))

    @staticmethod
    def _alter_null(schema_editor, model, field, action):
        return "ALTER TABLE %s ALTER COLUMN %s %s NOT NULL" % (
            schema_editor.quote_name(model._meta.db_table),
            schema_editor.quote_name(field.column), action)

    def describe(self):
        return "Stop using field %s of %s (the column stays until DropColumn)" % (
            self.name, self.model_name)

    @property
    def migration_name_fragment(self):
        return "stop_using_%s_%s" % (self.model_name.lower(), self.name.lower())


class StopUsingModel(Operation):
    """DeleteModel in Django's state only: the table stays for the
    deployments that still run older code.  DropTable drops it in a later
    release.  (Not a subclass of DeleteModel, for the optimizer's sake.)"""

    reduces_to_sql = True
    reversible = True

    def __init__(self, name):
        self.name = name

    def deconstruct(self):
        return (self.__class__.__name__, [], {"name": self.name})

    def state_forwards(self, app_label, state):
        migrations.DeleteModel(self.name).state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return "Stop using model %s (the table stays until DropTable)" % self.name

    @property
    def migration_name_fragment(self):
        return "stop_using_%s" % self.name.lower()


class DropColumn(Operation):
    """ALTER TABLE <the model's table> DROP COLUMN <column> CASCADE, for a
    field that StopUsingField removed from the state in an earlier release.
    Django's state is not changed."""

    reduces_to_sql = True
    reversible = False

    def __init__(self, model_name, column):
        self.model_name = model_name
        self.column = column

    def deconstruct(self):
        return (self.__class__.__name__, [], {"model_name": self.model_name, "column": self.column})

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        names = {f.column for f in model._meta.concrete_fields if f.column}
        if self.column in names:
            raise ValueError(
                "DropColumn: model %s.%s still has a field on column %r; remove the field "
                "with StopUsingField in an earlier release first" % (app_label, self.model_name, self.column))
        schema_editor.execute(schema_editor.sql_delete_column % {
            "table": schema_editor.quote_name(model._meta.db_table),
            "column": schema_editor.quote_name(self.column),
        })

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        raise IrreversibleError("DropColumn of %s.%s cannot be reversed: the column's data is gone"
                                % (self.model_name, self.column))

    def describe(self):
        return "Drop column %s of %s's table" % (self.column, self.model_name)

    @property
    def migration_name_fragment(self):
        return "drop_%s_%s" % (self.model_name.lower(), self.column.lower())


class DropTable(Operation):
    """DROP TABLE <table> CASCADE, for a model that StopUsingModel removed
    from the state in an earlier release (or the join table of a
    many-to-many field that StopUsingField removed).  The table is named as
    in the database (the model's db_table), since the state no longer has
    the model.  Django's state is not changed."""

    reduces_to_sql = True
    reversible = False

    def __init__(self, table):
        self.table = table

    def deconstruct(self):
        return (self.__class__.__name__, [], {"table": self.table})

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not router.allow_migrate(schema_editor.connection.alias, app_label):
            return
        schema_editor.execute(schema_editor.sql_delete_table % {
            "table": schema_editor.quote_name(self.table)})

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        raise IrreversibleError("DropTable of %s cannot be reversed: the table's data is gone"
                                % self.table)

    def describe(self):
        return "Drop table %s" % self.table

    @property
    def migration_name_fragment(self):
        return "drop_%s" % self.table.lower()
