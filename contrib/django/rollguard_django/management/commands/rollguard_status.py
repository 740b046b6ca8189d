"""manage.py rollguard_status: a short human report of the fleet.

    python manage.py rollguard_status

Each deployment with the version it runs, since when, and how many tagged
sessions of it are connected now (one recorded as live that never connects
may be gone: rollguard.remove_deployment()); connected versions no deploy
step recorded; what may be contracted now (rollguard.contractible); the
counters of refusals, warnings and overrides.  The same report from psql:
SELECT * FROM rollguard.status();
"""
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS

from rollguard_django.db import fetch_all


class Command(BaseCommand):
    help = ("Prints rollguard's report of the deployments, their connected sessions, "
            "what may be contracted now and the counters (rollguard.status()).")

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='The database to report on (default: "default").')

    def handle(self, *args, **options):
        for (line,) in fetch_all(options["database"], "SELECT line FROM rollguard.status() AS line"):
            self.stdout.write(line)
