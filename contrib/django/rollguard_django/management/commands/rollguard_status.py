"""manage.py rollguard_status: a short human report of the fleet.

    python manage.py rollguard_status

Each deployment with the version it runs, since when, and how many tagged
sessions of it are connected now (one recorded as live that never connects
may be gone: rollguard.remove_deployment()); connected versions no deploy
step recorded; what may be contracted now (rollguard.contractible); the
counters of refusals, warnings and overrides.  The same report from psql:
SELECT * FROM rollguard.status();
"""
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError

from rollguard_django.db import describe_database_error, postgresql_connection


class Command(BaseCommand):
    help = ("Prints rollguard's report of the deployments, their connected sessions, "
            "what may be contracted now and the counters (rollguard.status()).")

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='The database to report on (default: "default").')

    def handle(self, *args, **options):
        alias = options["database"]
        try:
            connection = postgresql_connection(alias)
        except ValueError as exc:
            raise CommandError(str(exc))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT line FROM rollguard.status() AS line")
                lines = [row[0] for row in cursor.fetchall()]
        except DatabaseError as exc:
            raise CommandError(describe_database_error(exc, alias), returncode=1)
        for line in lines:
            self.stdout.write(line)
