#!/bin/sh
# PostgreSQL 15's own regression suite, run without and with rollguard (preloaded,
# created, a live registry): same failing tests, identical results.  All of it is
# in test/pg_regress_suite.sh; 1.5 to 2.5 minutes (2 more the first time, which
# fetches the source package and builds its psql).
set -eu
exec sh "$(dirname "$0")/../pg_regress_suite.sh"
