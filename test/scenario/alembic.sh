#!/bin/sh
# rollguard with Alembic (Debian's python3-alembic, SQLAlchemy), as a team
# without Django uses it: migrations written by alembic revision
# --autogenerate, manifests written by hand, deploy steps with psql.
# op.drop_column is refused while a deployment runs the version that uses the
# column, and goes through once every deployment moved on; the CI dry run
# (alembic upgrade --sql into rollguard.check()); the same without a
# manifest (inferred contract, rollguard.stop_using()).
# See test/clients/test_alembic.py.
exec sh "$(dirname "$0")/../clients/run.sh" test_alembic "$@"
