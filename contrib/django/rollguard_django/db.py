"""The database side shared by the commands: the connection, and errors as psql shows them."""
from django.db import connections
from django.utils.connection import ConnectionDoesNotExist

# SQLSTATEs meaning "rollguard is not there": undefined function, undefined schema.
NOT_INSTALLED = {"42883", "3F000"}


def postgresql_connection(alias):
    """Django's connection `alias`; ValueError unless it is PostgreSQL."""
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        raise ValueError('database "%s" is not in settings.DATABASES' % alias)
    if connection.vendor != "postgresql":
        raise ValueError('database "%s" is not PostgreSQL (it is %s)'
                         % (alias, connection.vendor))
    return connection


def fetch_all(alias, query, params=None):
    """Runs one query on connection `alias` for a management command: its
    rows, or CommandError (the server's message, exit status 1)."""
    from django.core.management.base import CommandError
    from django.db import DatabaseError

    try:
        connection = postgresql_connection(alias)
    except ValueError as exc:
        raise CommandError(str(exc))
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()
    except DatabaseError as exc:
        raise CommandError(describe_database_error(exc, alias), returncode=1)


def describe_database_error(exc, alias):
    """The server's message, DETAIL and HINT of a DatabaseError, as psql shows them.

    Works with psycopg2 (pgcode) and psycopg 3 (sqlstate); Django keeps the
    driver's exception as __cause__.
    """
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    diag = getattr(cause, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(cause).strip()
    detail = getattr(diag, "message_detail", None)
    hint = getattr(diag, "message_hint", None)
    sqlstate = getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)
    if sqlstate in NOT_INSTALLED and not hint:
        hint = ('Is the rollguard extension created in database "%s"? '
                "Run CREATE EXTENSION rollguard; there first." % alias)
    lines = [primary]
    if detail:
        lines.append("DETAIL:  " + detail)
    if hint:
        lines.append("HINT:  " + hint)
    if sqlstate:
        lines.append("(SQLSTATE %s)" % sqlstate)
    return "\n".join(lines)
