"""The command line: python3 -m rollguard_sqlalchemy COMMAND ...

    manifest --metadata models:Base [--schema public]
        prints the manifest of this code version (sorted, indented JSON)
    register --url URL --metadata models:Base --version 42
        registers the version with its manifest, records no deploy step
        (what a deploy script runs before alembic upgrade head)
    deploy --url URL --metadata models:Base --deployment app-b --version 42
           [--rollout begin|finish|abort] [--manifest FILE]
        registers the version and records the deploy step, in one transaction
    check --url URL [-c alembic.ini] [--name alembic] [--revision head]
        the CI dry run: alembic upgrade CURRENT:head --sql through
        rollguard.check(); exit status 1 when a live deployment would block it

--url defaults to $ROLLGUARD_DATABASE_URL, then $DATABASE_URL (any URL
SQLAlchemy's create_engine takes: postgresql://..., postgresql+psycopg2://...).
--metadata is module:attribute (a MetaData, a declarative base or an ORM
registry), imported from the current directory; --manifest FILE registers a
manifest written at build time instead.  With ROLLGUARD_KEY in the
environment, deploy presents it first with rollguard.use_key().  Errors:
the server's message, DETAIL and HINT on stderr, exit status 1.
"""
import argparse
import importlib
import io
import json
import os
import sys

from rollguard_sqlalchemy.manifest import count_columns, manifest, manifest_json

STEPS = {
    None: "rollguard.deploy",
    "begin": "rollguard.begin_rollout",
    "finish": "rollguard.finish_rollout",
    "abort": "rollguard.abort_rollout",
}

# SQLSTATEs meaning "rollguard is not there": undefined function, undefined schema.
NOT_INSTALLED = {"42883", "3F000"}


class Failure(Exception):
    """A message for stderr and exit status 1."""


def load_target(spec):
    """The object `module:attr.attr` names, imported from the current directory."""
    module_name, sep, attrs = spec.partition(":")
    if not sep or not module_name or not attrs:
        raise Failure("--metadata %r: expected module:attribute (models:Base, app.db:metadata)" % spec)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target = importlib.import_module(module_name)
    except ImportError as exc:
        raise Failure("--metadata %s: cannot import %s: %s" % (spec, module_name, exc))
    for attr in attrs.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise Failure("--metadata %s: %s has no attribute %s" % (spec, module_name, attr))
    return target


def build(args):
    """The manifest: --manifest FILE, or derived from --metadata."""
    if getattr(args, "manifest", None):
        try:
            with open(args.manifest, encoding="utf-8") as f:
                result = json.load(f)
        except (OSError, ValueError) as exc:
            raise Failure("cannot read manifest %s: %s" % (args.manifest, exc))
        if not isinstance(result, dict) or not isinstance(result.get("relations"), dict):
            raise Failure('manifest %s is not {"relations": {...}}' % args.manifest)
        return result
    if not args.metadata:
        raise Failure("--metadata module:attribute (or --manifest FILE) is required")
    try:
        return manifest(load_target(args.metadata), schema=getattr(args, "schema", None))
    except TypeError as exc:
        raise Failure("--metadata %s: %s" % (args.metadata, exc))


def engine_for(args):
    from sqlalchemy import create_engine

    url = args.url or os.environ.get("ROLLGUARD_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise Failure("no database: give --url, or set ROLLGUARD_DATABASE_URL or DATABASE_URL")
    try:
        engine = create_engine(url)
    except Exception as exc:  # a malformed URL, a driver that is missing
        raise Failure("cannot use database URL: %s" % exc)
    if engine.dialect.name != "postgresql":
        raise Failure("the database is not PostgreSQL (it is %s)" % engine.dialect.name)
    return engine


def describe(exc):
    """The server's message, DETAIL and HINT, as psql shows them."""
    cause = getattr(exc, "orig", None) or exc
    diag = getattr(cause, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(cause).strip()
    detail = getattr(diag, "message_detail", None)
    hint = getattr(diag, "message_hint", None)
    sqlstate = getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)
    if sqlstate in NOT_INSTALLED and not hint:
        hint = "Is the rollguard extension created in this database? Run CREATE EXTENSION rollguard; there first."
    lines = [primary]
    if detail:
        lines.append("DETAIL:  " + detail)
    if hint:
        lines.append("HINT:  " + hint)
    if sqlstate:
        lines.append("(SQLSTATE %s)" % sqlstate)
    return "\n".join(lines)


def in_transaction(args, work):
    """Runs work(connection) in one transaction; database errors become Failure."""
    from sqlalchemy.exc import DBAPIError

    engine = engine_for(args)
    try:
        with engine.begin() as connection:
            return work(connection)
    except DBAPIError as exc:
        raise Failure(describe(exc))
    finally:
        engine.dispose()


def cmd_manifest(args):
    print(manifest_json(build(args)))


def register(connection, version, result):
    from sqlalchemy import text

    connection.execute(text("SELECT rollguard.register_version(:version, CAST(:manifest AS jsonb))"),
                       {"version": version, "manifest": json.dumps(result, sort_keys=True)})


def cmd_register(args):
    result = build(args)
    in_transaction(args, lambda c: register(c, args.version, result))
    print('rollguard: version "%s" registered: %d relations, %d columns'
          % (args.version, len(result["relations"]), count_columns(result)))


def cmd_deploy(args):
    from sqlalchemy import text

    result = build(args) if args.rollout in (None, "begin") else None

    def step(connection):
        key = os.environ.get("ROLLGUARD_KEY")
        if key:
            connection.execute(text("SELECT rollguard.use_key(:d, :k)"),
                               {"d": args.deployment, "k": key})
        if result is not None:
            register(connection, args.version, result)
        connection.execute(text("SELECT %s(:d, :v)" % STEPS[args.rollout]),
                           {"d": args.deployment, "v": args.version})
        return connection.execute(text(
            "SELECT version, state FROM rollguard.deployments"
            " WHERE deployment = :d ORDER BY state = 'rolling out', since"),
            {"d": args.deployment}).fetchall()

    live = in_transaction(args, step)
    state = ", ".join('"%s" (%s)' % (v, s) for v, s in live) or "nothing"
    registered = ""
    if result is not None:
        registered = ' [version "%s": %d relations, %d columns]' % (
            args.version, len(result["relations"]), count_columns(result))
    print('rollguard: deployment "%s" runs %s%s' % (args.deployment, state, registered))


def pending_sql(args):
    """(range, SQL) of `alembic upgrade CURRENT:TARGET --sql`, or (None, None)
    when the database is at the target already.  CURRENT is what the
    database's version table says, read through the project's env.py, as
    `alembic current` does."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    if not os.path.exists(args.config):
        raise Failure("no Alembic configuration %s (give -c alembic.ini)" % args.config)
    config = Config(args.config, ini_section=args.name)
    script = ScriptDirectory.from_config(config)
    current = []

    def grab(rev, context):
        current.extend(rev)
        return []

    with EnvironmentContext(config, script, fn=grab, dont_mutate=True):
        script.run_env()
    if len(current) > 1:
        raise Failure("the database is at %d heads (%s): dry-run each branch with --revision"
                      % (len(current), ", ".join(current)))
    if args.revision in ("head", "heads") and set(current) == set(script.get_heads()):
        return None, None
    span = "%s:%s" % (current[0], args.revision) if current else args.revision
    config.output_buffer = io.StringIO()
    command.upgrade(config, span, sql=True)
    return span, config.output_buffer.getvalue()


def cmd_check(args):
    from alembic.util import CommandError
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        span, sql = pending_sql(args)
    except CommandError as exc:
        raise Failure("alembic: %s" % exc)
    except DBAPIError as exc:
        raise Failure(describe(exc))
    if span is None:
        print("rollguard: no migrations to apply")
        return 0
    if args.sql_file:
        with open(args.sql_file, "w", encoding="utf-8") as f:
            f.write(sql)
    found = in_transaction(args, lambda c: c.execute(text(
        'SELECT change, relation, "column", deployment, version, reason,'
        " family = 'downtime' FROM rollguard.check(:sql)"), {"sql": sql}).fetchall())
    rows = [r[:6] for r in found if not r[6]]
    # what would stall deployed code (the downtime guard): said, and refused
    # by the server only where rollguard.lock_checks = on
    stalls = ["  would stall: %s" % r[5] for r in found if r[6]]
    if not rows:
        print("alembic upgrade %s: passes" % span)
        for line in stalls:
            print(line)
        return 0
    deployments = sorted({r[3] for r in rows})
    print("alembic upgrade %s: would be refused: %d deployment%s would break (%s)"
          % (span, len(deployments), "" if len(deployments) == 1 else "s", ", ".join(deployments)))
    for change, relation, column, deployment, version, reason in rows:
        what = relation + ("." + column if column else "")
        print('  %s %s: deployment "%s" runs version "%s", which %s'
              % (change, what, deployment, version, reason))
    for line in stalls:
        print(line)
    return 1


def parser():
    p = argparse.ArgumentParser(prog="python3 -m rollguard_sqlalchemy",
                                description="rollguard for SQLAlchemy and Alembic: manifests "
                                            "from the models, deploy steps, the CI dry run.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common(s, metadata=True):
        s.add_argument("--url", help="Database URL (default: $ROLLGUARD_DATABASE_URL, $DATABASE_URL).")
        if metadata:
            s.add_argument("--metadata", metavar="MODULE:ATTR",
                           help="The models: a MetaData, a declarative base or a registry.")
            s.add_argument("--schema", help="Schema for tables that name none (default: "
                                            "resolved by the server against search_path).")
            s.add_argument("--manifest", metavar="FILE",
                           help="Register this manifest file instead of deriving one.")

    s = sub.add_parser("manifest", help="Print the manifest of the models.")
    s.add_argument("--metadata", metavar="MODULE:ATTR", required=True,
                   help="The models: a MetaData, a declarative base or a registry.")
    s.add_argument("--schema", help="Schema for tables that name none (default: bare names).")
    s.set_defaults(func=cmd_manifest)

    s = sub.add_parser("register", help="Register the version with its manifest (no deploy step).")
    common(s)
    s.add_argument("--version", required=True, metavar="LABEL", help="Label of this build.")
    s.set_defaults(func=cmd_register)

    s = sub.add_parser("deploy", help="Register the version and record a deploy step.")
    common(s)
    s.add_argument("--deployment", required=True, metavar="NAME",
                   help="Name of the running copy: app-a, mirror-2, web, ...")
    s.add_argument("--version", required=True, metavar="LABEL", help="Label of this build.")
    s.add_argument("--rollout", choices=["begin", "finish", "abort"],
                   help="A rolling update step instead of a plain deploy (finish and abort "
                        "register nothing).")
    s.set_defaults(func=cmd_deploy)

    s = sub.add_parser("check", help="Dry-run the pending Alembic migrations through rollguard.check().")
    common(s, metadata=False)
    s.add_argument("-c", "--config", default="alembic.ini", help="Alembic configuration file.")
    s.add_argument("-n", "--name", default="alembic", help="Its section (default: alembic).")
    s.add_argument("--revision", default="head", help="Target revision (default: head).")
    s.add_argument("--sql-file", metavar="FILE", help="Also write the pending SQL to FILE.")
    s.set_defaults(func=cmd_check)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except Failure as exc:
        print("rollguard_sqlalchemy %s: %s" % (args.command, exc), file=sys.stderr)
        return 1
