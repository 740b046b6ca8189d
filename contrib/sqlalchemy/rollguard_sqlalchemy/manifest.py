"""The manifest of a code version, derived from its SQLAlchemy MetaData and mappers.

rollguard's manifest lists, per relation, the columns the code uses and, for
each, whether the code supplies it on INSERT ("writes") and whether it may
write NULL to it ("nullable"):

    {"relations": {"public.person": {"id": {"writes": false, "nullable": false},
                                     "name": {"writes": true, "nullable": false}}}}

Both are written for every column, always.  "writes" follows what the ORM
actually sends (measured with SQLAlchemy 1.4's unit of work on PostgreSQL,
see README.md):

- a mapped column with a Python-side default= (a value, a callable, a SQL
  expression, a Sequence) is in every INSERT: written;
- a mapped column without any default is in every INSERT, as NULL when the
  object leaves it unset (the ORM's "insert cols as none"): written, unless
  its type evaluates None itself (JSON and the like: an unset attribute is
  then left out of the INSERT): not written;
- a column with only a server_default (or FetchedValue) is left out of the
  INSERT unless the object sets a value (even an explicit None is left
  out): not written, the code relies on the database default;
- the autoincrement integer primary key (SERIAL), an Identity and a
  Computed column are left to the database: not written;
- a column of a table no mapper maps (a Core Table, a many-to-many
  "secondary" table), or one a mapper inserting into its table leaves out
  (exclude_properties; a single-table inheritance subclass's column, which
  the parent's INSERTs leave out): Core inserts name only the values given,
  so only a Python default or a NOT NULL column without any default (which
  every working INSERT must name) counts as written.

"nullable" is Column.nullable (the code may set None and UPDATE), except for
columns the code cannot write at all (Identity, Computed, the autoincrement
key), which it never writes NULL to.  Where in doubt, the manifest says
"not written" and "nullable": what makes rollguard refuse rather than let a
break through.
"""
import json

from sqlalchemy import MetaData, Sequence
from sqlalchemy.orm import configure_mappers

try:  # SQLAlchemy 1.4, 2.0: every registry (declarative bases, classical mapping)
    from sqlalchemy.orm.mapperlib import _all_registries
except ImportError:  # pragma: no cover - other releases
    _all_registries = None


def resolve_target(target):
    """(metadata, mappers) of what --metadata names: a MetaData, a declarative
    base (its .metadata and .registry), or an ORM registry."""
    if isinstance(target, MetaData):
        metadata, registries = target, None
    elif hasattr(target, "__mapper__"):
        raise TypeError("%r is a mapped class: name its declarative base (or the MetaData)"
                        % (target,))
    elif isinstance(getattr(target, "metadata", None), MetaData) and hasattr(target, "mappers"):
        metadata, registries = target.metadata, [target]          # a registry
    elif isinstance(getattr(target, "metadata", None), MetaData):
        metadata = target.metadata
        registry = getattr(target, "registry", None)
        registries = [registry] if registry is not None and hasattr(registry, "mappers") else None
    else:
        raise TypeError("%r is neither a MetaData, a declarative base nor a registry" % (target,))
    if registries is None:
        registries = list(_all_registries()) if _all_registries is not None else []
    mappers = [m for r in registries for m in r.mappers]
    return metadata, mappers


def mapped_columns(metadata, mappers):
    """The Column objects of metadata's tables that every mapper inserting
    into their table persists.  A single-table inheritance subclass adds
    columns to its parent's table that the parent's INSERTs leave out; a
    mapper's exclude_properties leaves columns out of all its INSERTs."""
    if mappers:
        configure_mappers()
    tables = set(metadata.tables.values())
    by_table = {}
    for mapper in mappers:
        if getattr(mapper, "non_primary", False):  # 1.4: maps, never inserts
            continue
        persisted = set(c for c in mapper.columns if getattr(c, "table", None) in tables)
        for table in mapper.tables:
            if table in tables:
                by_table.setdefault(table, []).append(persisted)
    columns = set()
    for table, sets in by_table.items():
        columns.update(c for c in table.columns if all(c in s for s in sets))
    return columns


def autoincrement_column(table):
    """The column SQLAlchemy makes SERIAL / leaves to the database
    (public in 2.0, _autoincrement_column in 1.4)."""
    found = getattr(table, "autoincrement_column", None)
    return found if found is not None else getattr(table, "_autoincrement_column", None)


def filled_by_database(column):
    """True for columns the database fills and the code cannot or does not
    write: Computed, Identity, and the table's autoincrement integer key
    (SERIAL) unless an explicit Sequence makes the INSERT name it."""
    if column.computed is not None or column.identity is not None:
        return True
    if column.primary_key and column is autoincrement_column(column.table):
        default = column.default
        if default is None:
            return True
        # Sequence(optional=True) on PostgreSQL: SERIAL instead, not sent
        return isinstance(default, Sequence) and bool(default.optional)
    return False


def column_writes(column, mapped):
    """Whether every INSERT the code sends names this column."""
    if filled_by_database(column):
        return False
    if column.default is not None:
        return True                     # Python-side default: always sent
    if column.server_default is not None:
        return False                    # left out unless set: relies on it
    if mapped:
        # the ORM sends NULL for an unset column without defaults, unless
        # its type evaluates None itself (JSON): then it leaves it out
        return not getattr(column.type, "should_evaluate_none", False)
    # Core: only what the statement names; a NOT NULL column without any
    # default is named by every INSERT that works at all
    return not column.nullable


def table_columns(table, mapped):
    """{column: {"writes": bool, "nullable": bool}} of one table."""
    columns = {}
    for column in table.columns:
        by_database = filled_by_database(column)
        columns[column.name] = {
            "writes": column_writes(column, column in mapped),
            # A column the code never writes, it never writes NULL to.
            "nullable": bool(column.nullable) and not by_database,
        }
    return columns


def manifest(target, schema=None):
    """The manifest of the tables of `target` (a MetaData, a declarative base
    or a registry), as a dict.

    A table with a schema (Table(..., schema=) or MetaData(schema=)) is
    named schema.table; a plain table gets `schema` if given, else stays a
    bare name that rollguard resolves against the registering session's
    search_path.
    """
    metadata, mappers = resolve_target(target)
    mapped = mapped_columns(metadata, mappers)
    relations = {}
    for table in metadata.sorted_tables:
        nsp = table.schema or schema
        name = "%s.%s" % (nsp, table.name) if nsp else table.name
        relations[name] = table_columns(table, mapped)
    return {"relations": relations}


def manifest_json(manifest):
    """The manifest as stable text: sorted keys, two-space indent."""
    return json.dumps(manifest, sort_keys=True, indent=2)


def count_columns(manifest):
    return sum(len(cols) for cols in manifest["relations"].values())
