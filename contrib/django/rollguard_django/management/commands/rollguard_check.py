"""manage.py rollguard_check: the CI dry run of the migrations not applied yet.

    python manage.py rollguard_check            # every app
    python manage.py rollguard_check shop       # the migrations of one app

Takes the migrations `migrate` would apply, in the order it would apply them,
renders the SQL of each (what `sqlmigrate` prints) and passes it to
rollguard.check() on the database, which judges it as one transaction
against the deployments live now, executing nothing.  Prints, per migration,
whether it passes, and for one that would be refused every change and every
deployment that blocks it, and why; and what would stall deployed code (the
downtime guard: a non-concurrent index build on a large table, ...), which
does not fail the check.  Exit status 1 when anything blocks (a
CI gate), 0 otherwise.
"""
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from rollguard_django.db import fetch_all, postgresql_connection


class Command(BaseCommand):
    help = ("Runs the SQL of every unapplied migration, in plan order, through "
            "rollguard.check() (a dry run: nothing is executed) and reports which "
            "deployments would block it; exit status 1 if any would.")

    def add_arguments(self, parser):
        parser.add_argument("app_label", nargs="?",
                            help="Only the migrations of this app (and what they depend on).")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='The database to check against (default: "default").')

    def handle(self, *args, **options):
        alias = options["database"]
        try:
            postgresql_connection(alias)
        except ValueError as exc:
            raise CommandError(str(exc))
        executor = MigrationExecutor(connections[alias])
        loader = executor.loader
        if options["app_label"]:
            app = options["app_label"]
            if app not in loader.migrated_apps:
                raise CommandError("App '%s' does not have migrations." % app)
            targets = [key for key in loader.graph.leaf_nodes() if key[0] == app]
        else:
            targets = loader.graph.leaf_nodes()
        plan = [(m, backwards) for m, backwards in executor.migration_plan(targets)
                if not backwards]
        if not plan:
            self.stdout.write("rollguard: no migrations to apply")
            return

        blocked = 0
        for migration, _ in plan:
            name = "%s.%s" % (migration.app_label, migration.name)
            statements = loader.collect_sql([(migration, False)])
            script = "\n".join(statements)
            found = fetch_all(alias, 'SELECT change, relation, "column", deployment, version,'
                                     " reason, family = 'downtime' FROM rollguard.check(%s)",
                                     [script])
            rows = [r[:6] for r in found if not r[6]]
            # what would stall deployed code (the downtime guard): said, and
            # refused by the server only where rollguard.lock_checks = on
            stalls = ["  would stall: %s" % r[5] for r in found if r[6]]
            if not rows:
                self.stdout.write("%s: passes" % name)
                for line in stalls:
                    self.stdout.write(line)
                continue
            blocked += 1
            deployments = sorted({r[3] for r in rows})
            self.stdout.write("%s: would be refused: %d deployment%s would break (%s)"
                              % (name, len(deployments), "" if len(deployments) == 1 else "s",
                                 ", ".join(deployments)))
            for change, relation, column, deployment, version, reason in rows:
                what = relation + ("." + column if column else "")
                self.stdout.write('  %s %s: deployment "%s" runs version "%s", which %s'
                                  % (change, what, deployment, version, reason))
            for line in stalls:
                self.stdout.write(line)
        if blocked:
            raise CommandError(
                "%d of %d migrations would be refused: roll out the versions that stop "
                "using what they change first, or ship them in a later release "
                '(see "Removing a field or a model" in rollguard\'s doc/django.md)'
                % (blocked, len(plan)), returncode=1)
        self.stdout.write("rollguard: %d migration%s would pass"
                          % (len(plan), "" if len(plan) == 1 else "s"))
