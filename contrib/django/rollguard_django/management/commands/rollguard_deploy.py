"""manage.py rollguard_deploy: register this code version and record a deploy step.

    python manage.py rollguard_deploy --deployment mirror-2 --version 42
    python manage.py rollguard_deploy --deployment web --version 43 --rollout begin
    python manage.py rollguard_deploy --deployment web --version 43 --rollout finish
    python manage.py rollguard_deploy --deployment web --version 43 --rollout abort

In one transaction: rollguard.register_version(VERSION, <this code's manifest>)
and then rollguard.deploy() (or begin_rollout / finish_rollout /
abort_rollout).  A refusal (a rollback past a contract migration, a different
manifest under a known label, ...) prints the server's message, DETAIL and
HINT and exits with status 1; nothing is recorded then.

Only a plain deploy and --rollout begin register the version: finish and
abort name a version that begin registered (abort may well run from the old
build, whose manifest is another one).

    python manage.py rollguard_deploy --version 42 --register-only

registers the version with its manifest and records no step: what a deploy
script runs before it migrates, so that a refusal knows that this release
no longer uses what its migration drops (and says to ship the drop in a
later release).

With ROLLGUARD_KEY in the environment (a secret of this deployment's own),
the step first presents it with rollguard.use_key(): the first time, that
binds the deployment to the key; from then on no deploy step or removal of
the deployment goes through without it (for platforms where every
deployment connects as one database role, see doc/safety.md).
"""
import json
import os

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction

from rollguard_django.db import describe_database_error, postgresql_connection
from rollguard_django.manifest import build_manifest, count_columns

STEPS = {
    None: "rollguard.deploy",
    "begin": "rollguard.begin_rollout",
    "finish": "rollguard.finish_rollout",
    "abort": "rollguard.abort_rollout",
}


class Command(BaseCommand):
    help = ("Registers this code version with its manifest and records that a "
            "deployment runs it (or begins, finishes or aborts rolling it out), "
            "in one transaction.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version names the build; it replaces Django's own --version
        # (which would print Django's version).
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--deployment", metavar="NAME",
                            help="Name of the running copy: original, mirror-2, web, eu-blue, ...")
        parser.add_argument("--version", required=True, dest="code_version", metavar="LABEL",
                            help="Label of this build: 42, 2.3.1, 2026.11.20-3, ...")
        parser.add_argument("--rollout", choices=["begin", "finish", "abort"],
                            help="A rolling update step instead of a plain deploy: begin "
                                 "(the version starts beside the running one), finish (only "
                                 "it remains), abort (it is gone again). finish and abort "
                                 "register nothing.")
        parser.add_argument("--register-only", action="store_true",
                            help="Register the version with its manifest and record no "
                                 "deploy step (before the migration runs).")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='The database to record in (default: "default").')
        parser.add_argument("--manifest", metavar="FILE",
                            help="Register this manifest file (from rollguard_manifest at "
                                 "build time) instead of deriving it from the models now.")

    def handle(self, *args, **options):
        alias = options["database"]
        deployment = options["deployment"]
        version = options["code_version"]
        rollout = options["rollout"]
        if options["register_only"] and rollout:
            raise CommandError("--register-only records no step: leave out --rollout")
        if not options["register_only"] and not deployment:
            raise CommandError("--deployment is required (unless --register-only)")
        try:
            connection = postgresql_connection(alias)
        except ValueError as exc:
            raise CommandError(str(exc))
        if options["register_only"]:
            return self.register_only(connection, alias, version, options["manifest"])

        try:
            with transaction.atomic(using=alias):
                manifest = None
                if rollout in (None, "begin"):
                    manifest = self.manifest(alias, options["manifest"])
                with connection.cursor() as cursor:
                    key = os.environ.get("ROLLGUARD_KEY")
                    if key:
                        cursor.execute("SELECT rollguard.use_key(%s, %s)", [deployment, key])
                    if manifest is not None:
                        cursor.execute("SELECT rollguard.register_version(%s, %s::jsonb)",
                                       [version, json.dumps(manifest, sort_keys=True)])
                    cursor.execute("SELECT %s(%%s, %%s)" % STEPS[rollout],
                                   [deployment, version])
                    cursor.execute(
                        "SELECT version, state FROM rollguard.deployments"
                        " WHERE deployment = %s ORDER BY state = 'rolling out', since",
                        [deployment])
                    live = cursor.fetchall()
        except DatabaseError as exc:
            raise CommandError(describe_database_error(exc, alias), returncode=1)

        state = ", ".join('"%s" (%s)' % (v, s) for v, s in live) or "nothing"
        registered = ""
        if manifest is not None:
            registered = " [version \"%s\": %d relations, %d columns]" % (
                version, len(manifest["relations"]), count_columns(manifest))
        self.stdout.write('rollguard: deployment "%s" runs %s%s'
                          % (deployment, state, registered))

    def register_only(self, connection, alias, version, path):
        manifest = self.manifest(alias, path)
        try:
            with transaction.atomic(using=alias):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT rollguard.register_version(%s, %s::jsonb)",
                                   [version, json.dumps(manifest, sort_keys=True)])
        except DatabaseError as exc:
            raise CommandError(describe_database_error(exc, alias), returncode=1)
        self.stdout.write('rollguard: version "%s" registered: %d relations, %d columns'
                          % (version, len(manifest["relations"]), count_columns(manifest)))

    def manifest(self, alias, path):
        if path is None:
            try:
                return build_manifest(alias)
            except ValueError as exc:
                raise CommandError(str(exc))
        try:
            with open(path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as exc:
            raise CommandError("cannot read manifest %s: %s" % (path, exc))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("relations"), dict):
            raise CommandError('manifest %s is not {"relations": {...}}' % path)
        return manifest
