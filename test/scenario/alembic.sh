#!/bin/sh
# rollguard with Alembic (SQLAlchemy 1.4 and 2), as a
# team without Django uses it: migrations written by alembic revision
# --autogenerate, manifests and deploy steps by contrib/sqlalchemy
# (python3 -m rollguard_sqlalchemy).  An original and two mirrors; five
# contract revisions (drop a column, rename one with op.alter_column, nullable
# -> NOT NULL, drop a server default, drop a table), each refused while a
# mirror runs the version before (alembic_version and the schema checked) and
# applied once both moved on; the CI dry run (rollguard_sqlalchemy check:
# alembic upgrade --sql into rollguard.check(), exit 1); the generator's
# "writes" against the INSERTs the ORM really sends; the same drop without a
# manifest (inferred contract, rollguard.stop_using()).
# Twice: on bookworm's SQLAlchemy 1.4 / Alembic 1.8, then on SQLAlchemy 2
# with the Alembic built for it (from a newer Debian suite:
# test/clients/django_debs.sh sqlalchemy2).
# See test/clients/test_alembic.py.
set -u
here=$(dirname "$0")
status=0
echo "# SQLAlchemy 1.4, Alembic 1.8 (bookworm)"
sh "$here/../clients/run.sh" test_alembic "$@" || status=1
echo "# SQLAlchemy 2, Alembic (newer Debian suite)"
RG_SQLALCHEMY=2 sh "$here/../clients/run.sh" test_alembic "$@" || status=1
exit $status
