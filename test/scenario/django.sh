#!/bin/sh
# rollguard with real Django (Debian's python3-django 3.2, psycopg2): generated
# projects, migrations written by manage.py makemigrations, and manage.py
# migrate refused while a deployment runs the version it would break --
# RemoveField, AddField NOT NULL with a Python default (and the safe path),
# AlterField null -> NOT NULL, RenameField, RenameModel, DeleteModel -- then
# allowed once every deployment moved on (manage.py rollguard_deploy).
# The downtime guard: AddIndex refused on a large table, allowed on a small
# one, AddIndexConcurrently allowed.  Also rollguard_manifest and
# rollguard_deploy themselves.
# See test/clients/test_django.py.
exec sh "$(dirname "$0")/../clients/run.sh" test_django "$@"
