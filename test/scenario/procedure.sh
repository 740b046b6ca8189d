#!/bin/sh
# The procedure of README and contrib/deploy/divio_mirror.sh with real Django,
# on bookworm's Django 3.2 and on Django 5.2 (Debian's package from a newer
# suite of the same archive, fetched once with a private apt configuration
# and cached under test/cache/; see test/clients/django_debs.sh): three
# mirrors on one database role with a key each, tagged connections, a field
# removed in two releases (StopUsingField, then DropColumn) with
# makemigrations --check green at every step, a stale mirror removed.
# See test/clients/test_procedure.py.
set -u
here=$(dirname "$0")
status=0
echo "# Django 3.2 (python3-django, bookworm)"
sh "$here/../clients/run.sh" test_procedure "$@" || status=1
echo "# Django 5.2"
RG_DJANGO=5.2 sh "$here/../clients/run.sh" test_procedure "$@" || status=1
exit $status
