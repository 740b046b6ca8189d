"""The manifest of this code version, derived from the installed models.

rollguard's manifest lists, per relation, the columns the code uses and, for
each, whether the code supplies it on INSERT ("writes") and whether it may
write NULL to it ("nullable"):

    {"relations": {"public.shop_person": {"id": {"writes": false, "nullable": false},
                                          "name": {"writes": true, "nullable": false}}}}

Every installed app's concrete models count (django.contrib.auth, contenttypes,
sessions and admin are code that runs too), with their auto-created
many-to-many tables and unmanaged models (the code reads and writes those
tables even though migrations do not create them).  Proxy models share their
concrete model's table and add nothing; swapped-out models (auth.User under a
custom AUTH_USER_MODEL) are not used.  Models that the database routers keep
out of the database (allow_migrate() is False) are left out.
"""
import json

from django.apps import apps as global_apps
from django.db import router
from django.db.models.fields import NOT_PROVIDED

from rollguard_django.db import postgresql_connection

try:  # Django 3.0+
    from django.db.models.fields import AutoFieldMixin
except ImportError:  # pragma: no cover - older Django
    AutoFieldMixin = ()


def split_db_table(db_table):
    """(schema, name) of a model's db_table; schema None for a plain name.

    Django sends db_table through quote_name(), which leaves a name that is
    already quoted alone, so '"reporting"."stats"' and 'reporting"."stats'
    both reach PostgreSQL as "reporting"."stats".  Any other dot is part of
    the table's name.
    """
    name = db_table
    if name.startswith('"') and name.endswith('"') and len(name) >= 2:
        name = name[1:-1]
    if '"."' in name:
        schema, _, table = name.partition('"."')
        return schema, table
    return None, name


def filled_by_database(field, meta):
    """True for columns the ORM never supplies on INSERT: auto-generated
    primary keys (AutoField, BigAutoField, SmallAutoField) and generated
    columns (GeneratedField, Django 5.0+)."""
    if isinstance(field, AutoFieldMixin) or field is meta.auto_field:
        return True
    return bool(getattr(field, "generated", False))


def relies_on_db_default(field):
    """Django 5.0+ db_default: the ORM sends DEFAULT unless the code sets a
    value, so the code needs the database default to stay.  A field with a
    Python default= as well gets that value from the ORM on every INSERT:
    the code writes it."""
    return (getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED
            and not field.has_default())


def used_models(using="default", app_registry=None):
    """Concrete models whose tables the code uses in database `using`."""
    app_registry = app_registry or global_apps
    for model in app_registry.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or meta.swapped:
            continue
        if not router.allow_migrate(using, meta.app_label,
                                    model_name=meta.model_name, model=model):
            continue
        yield model


def model_columns(model):
    """{column: {"writes": bool, "nullable": bool}} of one model's table."""
    meta = model._meta
    columns = {}
    for field in meta.local_concrete_fields:
        if not field.column:
            continue
        by_database = filled_by_database(field, meta)
        columns[field.column] = {
            "writes": not by_database and not relies_on_db_default(field),
            # A column the code never writes, it never writes NULL to.
            "nullable": bool(field.null) and not by_database,
        }
    return columns


def build_manifest(using="default", schema=None, app_registry=None):
    """The manifest of the tables the code uses in database `using`, as a dict.

    Relation names are schema-qualified: a db_table naming its schema keeps
    it; a plain name is resolved as PostgreSQL resolves it at run time,
    against the connection's search_path (an existing relation's schema,
    else current_schema()).  With `schema`, plain names are put in that
    schema and the database is not asked at all.
    """
    tables = [(split_db_table(model._meta.db_table), model_columns(model))
              for model in used_models(using, app_registry)]
    if schema is None:
        bare = sorted({name for (nsp, name), _ in tables if nsp is None})
        resolved = resolve_schemas(postgresql_connection(using), bare) if bare else {}
    relations = {}
    for (nsp, name), columns in tables:
        if nsp is None:
            nsp = schema if schema is not None else resolved[name]
        relation = relations.setdefault("%s.%s" % (nsp, name), {})
        for column, props in columns.items():
            if column in relation:
                # two models on one table: written only if both write it,
                # nullable if either may write NULL (where the models
                # disagree, the side that refuses, as the other generators)
                old = relation[column]
                props = {"writes": old["writes"] and props["writes"],
                         "nullable": old["nullable"] or props["nullable"]}
            relation[column] = props
    return {"relations": relations}


def resolve_schemas(connection, names):
    """{name: schema} for plain table names, resolved against search_path."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.name,
                   COALESCE((SELECT n.nspname
                               FROM pg_catalog.pg_class c
                               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                              WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident(t.name))),
                            pg_catalog.current_schema())
              FROM pg_catalog.unnest(%s::text[]) AS t(name)
            """,
            [list(names)],
        )
        rows = dict(cursor.fetchall())
    missing = [name for name, nsp in rows.items() if nsp is None]
    if missing:
        raise ValueError(
            "cannot tell the schema of table %s: the search_path of database "
            "%r names no existing schema (use --schema)" % (missing[0], connection.alias))
    return rows


def manifest_json(manifest):
    """The manifest as stable text: sorted keys, two-space indent."""
    return json.dumps(manifest, sort_keys=True, indent=2)


def count_columns(manifest):
    return sum(len(cols) for cols in manifest["relations"].values())
