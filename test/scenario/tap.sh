#!/bin/sh
# TAP tests (test/t/*.pl, PostgreSQL::Test::Cluster): the registry and its
# decisions survive a restart, a crash, pg_dump/pg_restore and an extension
# upgrade; refusals reach the server log; an override stays in its session;
# tagged sessions count as live while connected.
#     sh test/scenario/tap.sh                       # every test/t/*.pl
#     sh test/scenario/tap.sh t/003_upgrade.pl      # some (relative to test/)
# As root, with rollguard installed.  Runs PGXS's `make prove_installcheck`
# as the postgres OS user, from a copy of the tree.  Prints prove's ok / not
# ok lines; exits non-zero on any failure, after printing the server logs of
# the failed run (they are also kept in test/tmp/tap-logs/).
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh
rg_need_root
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}
PGXS_SRC=$(dirname "$(pg_config --pgxs)")/..
if [ ! -d "$PGXS_SRC/test/perl/PostgreSQL/Test" ] || ! perl -MIPC::Run -e 1 2>/dev/null; then
	echo "not ok - PostgreSQL::Test::Cluster or IPC::Run missing (postgresql-server-dev-$RG_PG_MAJOR, libipc-run-perl)"
	exit 1
fi

tests=""
for t in ${*:-t/*.pl}; do
	tests="$tests test/$t"
done

rg_workdir
cleanup() {
	# a run cut short by the timeout may leave its servers behind
	for pid in "$RG_WORK"/tmp_check/t_*_data/pgdata/postmaster.pid; do
		[ -f "$pid" ] || continue
		rg_as_postgres "$RG_BINDIR/pg_ctl -D '$(dirname "$pid")' -m immediate -w stop" >/dev/null 2>&1 || true
	done
	rm -rf "$RG_WORK"
}
trap cleanup EXIT

# Every psql call and wait inside a test gives up after 60 s; the whole run
# after 170 s.
# prove -v prints every ok / not ok line; the notes (lines starting with
# "#" on stdout, e.g. each background psql query) are left out here and
# kept in the regress_log_* files; failure diagnostics (stderr) are shown.
start=$(date +%s)
status=0
rg_as_postgres "cd '$RG_WORK' && PG_TEST_TIMEOUT_DEFAULT=60 \
	timeout 170 make -s prove_installcheck PROVE_TESTS='$tests' PROVE_FLAGS='-v --timer' \
	>'$RG_WORK/prove.out'" || status=$?
grep -v '^#' "$RG_WORK/prove.out" || true

if [ "$status" != 0 ]; then
	# the server logs of the tests that failed (all of them: test/tmp/tap-logs/)
	rm -rf test/tmp/tap-logs
	mkdir -p test/tmp/tap-logs
	cp -r "$RG_WORK"/tmp_check/log/. test/tmp/tap-logs/ 2>/dev/null || true
	for t in $(sed -n 's|^test/t/\([^ ]*\)\.pl .*Wstat.*|\1|p' "$RG_WORK/prove.out"); do
		for f in test/tmp/tap-logs/"$t"_*.log; do
			[ -f "$f" ] || continue
			echo "--- $f (last 40 lines)"
			tail -40 "$f"
		done
	done
fi
echo "tap: $(($(date +%s) - start)) s"
exit $status
