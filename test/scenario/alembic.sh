#!/bin/sh
# rollguard with Alembic (Debian's python3-alembic 1.8, SQLAlchemy 1.4), as a
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
# See test/clients/test_alembic.py.
exec sh "$(dirname "$0")/../clients/run.sh" test_alembic "$@"
