#!/bin/sh
# CREATE EXTENSION refuses to install where rollguard is not in
# shared_preload_libraries, so that nobody believes they are protected when
# they are not; a library loaded late (LOAD) installs no hook; and with the
# extension created, a server started without the preload refuses schema
# changes.
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}

dir=$(mktemp -d /tmp/rollguard-nopreload.XXXXXX)
chown postgres "$dir"
trap 'rg_stop_cluster "$dir"; rm -rf "$dir"' EXIT
rg_start_cluster "$dir"
# the same cluster, without the preload
sed -i "s/^shared_preload_libraries = 'rollguard'/shared_preload_libraries = ''/" "$dir/data/postgresql.conf"
rg_as_postgres "$RG_BINDIR/pg_ctl -D '$dir/data' -w restart >/dev/null"

psql_out() { rg_as_postgres "psql -h '$dir' -p 5432 -X -q -v VERBOSITY=default -c \"$1\" 2>&1" || true; }
fail=0
expect() {
	if printf '%s' "$2" | grep -qF -- "$1"; then
		echo "ok - $3"
	else
		echo "not ok - $3: expected \"$1\" in:"; printf '%s\n' "$2"; fail=1
	fi
}

out=$(psql_out "CREATE EXTENSION rollguard")
expect 'ERROR:  rollguard must be loaded via "shared_preload_libraries"' "$out" "CREATE EXTENSION refused"
expect 'HINT:  Add rollguard to "shared_preload_libraries" in postgresql.conf and restart the server.' "$out" "with a hint"
out=$(psql_out "SELECT count(*) FROM pg_extension WHERE extname = 'rollguard'")
expect ' 0' "$out" "nothing installed"
out=$(psql_out "SELECT count(*) FROM pg_namespace WHERE nspname = 'rollguard'")
expect ' 0' "$out" "no schema left behind"

# With the preload back, it installs; removed again, the deploy functions
# refuse to run rather than pretend.
sed -i "s/^shared_preload_libraries = ''/shared_preload_libraries = 'rollguard'/" "$dir/data/postgresql.conf"
rg_as_postgres "$RG_BINDIR/pg_ctl -D '$dir/data' -w restart >/dev/null"
out=$(psql_out "CREATE EXTENSION rollguard")
if [ -z "$out" ]; then echo "ok - CREATE EXTENSION with the preload"; else echo "not ok - $out"; fail=1; fi
sed -i "s/^shared_preload_libraries = 'rollguard'/shared_preload_libraries = ''/" "$dir/data/postgresql.conf"
rg_as_postgres "$RG_BINDIR/pg_ctl -D '$dir/data' -w restart >/dev/null"
out=$(psql_out "SELECT rollguard.deploy('web', '1')")
expect 'ERROR:  rollguard must be loaded via "shared_preload_libraries"' "$out" "deploy() refuses without the preload"
out=$(psql_out "SELECT count(*) FROM rollguard.deployments")
expect ' 0' "$out" "nothing recorded"
# ... and every schema change is refused (1.6: fail closed), until the
# extension is dropped (test/t/008_not_preloaded.pl tests the rest)
out=$(psql_out "CREATE TABLE t (id int)")
expect 'ERROR:  rollguard must be loaded via "shared_preload_libraries"' "$out" "a schema change refuses without the preload"
out=$(psql_out "SELECT rollguard.is_active()")
expect ' f' "$out" "rollguard.is_active() says so"
out=$(psql_out "DROP EXTENSION rollguard")
if [ -z "$out" ]; then echo "ok - DROP EXTENSION without the preload"; else echo "not ok - $out"; fail=1; fi
out=$(psql_out "CREATE TABLE t (id int)")
if [ -z "$out" ]; then echo "ok - then schema changes go through"; else echo "not ok - $out"; fail=1; fi

exit $fail
