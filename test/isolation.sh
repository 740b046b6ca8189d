#!/bin/sh
# Isolation tests (specs/*.spec, with their expected output in
# expected/*.out): migrations racing deploy steps (race_*, net_effect_*,
# deploy_not_stalled), and what a long-lived session keeps between checks
# (registry_cache).  Run by PGXS (`make installcheck`, which runs them after
# the pg_regress suites; here alone) on a temporary instance that preloads
# rollguard (test/rollguard.conf).  Each permutation must end as some serial order of
# the two would: never a dropped column under a live version that uses it,
# no deadlock, no lost deploy step.
#     sh test/isolation.sh                  # every specs/*.spec
#     sh test/isolation.sh race_double_deploy
# As root, with rollguard installed.  Prints "ok - NAME" or "not ok - NAME"
# per spec (and the differences), exits non-zero on any failure.  The
# actual output of every spec is copied to output_iso/results/ here, for
# updating expected/ after a deliberate change.
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh
rg_need_root
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}
ISOLATION_REGRESS=$(dirname "$(pg_config --pgxs)")/../test/isolation/pg_isolation_regress
if [ ! -x "$ISOLATION_REGRESS" ]; then
	echo "not ok - pg_isolation_regress not found at $ISOLATION_REGRESS (postgresql-server-dev-$RG_PG_MAJOR)"
	exit 1
fi

if [ $# -gt 0 ]; then
	specs="$*"
else
	specs=$(cd specs && ls *.spec | sed 's/\.spec$//' | tr '\n' ' ')
fi

rg_workdir
cleanup() {
	# a run cut short by the timeout leaves its temporary postmaster behind
	if [ -f "$RG_WORK/tmp_check_iso/data/postmaster.pid" ]; then
		rg_as_postgres "$RG_BINDIR/pg_ctl -D '$RG_WORK/tmp_check_iso/data' -m immediate -w stop" >/dev/null 2>&1 || true
	fi
	rm -rf "$RG_WORK"
}
trap cleanup EXIT

# A step that waits longer than 2 x 15 s is cancelled by isolationtester (a
# lost wake-up would otherwise hang); the whole run is bounded as well.
status=0
start=$(date +%s)
rg_as_postgres "cd '$RG_WORK' && PG_TEST_TIMEOUT_DEFAULT=15 timeout 150 \
	make -s installcheck RG_TEMP_INSTANCE=1 REGRESS= ISOLATION='$specs'" >"$RG_WORK/isolation.log" 2>&1 || status=$?

mkdir -p output_iso/results
cp "$RG_WORK"/output_iso/results/*.out output_iso/results/ 2>/dev/null || true

for s in $specs; do
	# (pg_regress removes regression.out when all pass: read its stdout)
	line=$(grep -E "^(test|ok|not ok) +[0-9]* *-? *$s " "$RG_WORK/isolation.log" || true)
	case "$line" in
		*" ok "*) echo "ok - $s ($(echo "$line" | grep -oE '[0-9]+ ms'))" ;;
		*) echo "not ok - $s${line:+: $line}"; status=1 ;;
	esac
done
if [ "$status" != 0 ]; then
	[ -s "$RG_WORK/output_iso/regression.diffs" ] && cat "$RG_WORK/output_iso/regression.diffs"
	echo "--- pg_isolation_regress output:"
	cat "$RG_WORK/isolation.log"
	cat "$RG_WORK"/output_iso/log/postmaster.log 2>/dev/null | tail -20
fi
echo "isolation: $(($(date +%s) - start)) s"
exit $status
