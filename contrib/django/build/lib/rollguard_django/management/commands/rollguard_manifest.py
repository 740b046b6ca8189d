"""manage.py rollguard_manifest: print this code version's rollguard manifest.

    python manage.py rollguard_manifest > manifest.json
    python manage.py rollguard_manifest --schema public   # without a database

Every concrete model of every installed app is listed (with auto-created
many-to-many tables and unmanaged models; proxy models add nothing).  The
output is stable: sorted keys, two-space indent.
"""
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError

from rollguard_django.db import describe_database_error
from rollguard_django.manifest import build_manifest, manifest_json


class Command(BaseCommand):
    help = ("Prints the rollguard manifest of this code version: the columns the "
            "installed models use, per table, as JSON.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS,
            help="The database whose tables the manifest describes "
                 '(default: "default"); its search_path qualifies plain table names.')
        parser.add_argument(
            "--schema",
            help="Qualify plain table names with this schema instead of asking the "
                 "database (for building the manifest without a database).")

    def handle(self, *args, **options):
        if options["schema"] == "":
            raise CommandError("--schema must not be empty")
        try:
            manifest = build_manifest(options["database"], schema=options["schema"])
        except ValueError as exc:
            raise CommandError(str(exc))
        except DatabaseError as exc:
            raise CommandError(describe_database_error(exc, options["database"]))
        self.stdout.write(manifest_json(manifest))
