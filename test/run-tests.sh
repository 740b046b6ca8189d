#!/bin/sh
# Every test of rollguard, from a fresh Debian bookworm machine, as root:
#     test/run-tests.sh
# Installs what it needs, builds with -Werror, and runs each suite on
# throwaway clusters of its own (as the postgres OS user, on Unix sockets in
# temporary directories).  Ends with one line "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh

rg_need_root
rg_install_deps
rg_build_install
rg_workdir
trap 'rm -rf "$RG_WORK"' EXIT

passed=0
failed=0
suite() {
	name=$1
	shift
	rg_log "suite: $name"
	if "$@"; then
		passed=$((passed + 1))
		echo "ok: $name"
	else
		failed=$((failed + 1))
		echo "FAILED: $name"
	fi
}

# PGXS: the pg_regress suites, then the isolation specs (a step that waits
# longer than 2 x 15 s is cancelled; the whole run is bounded as well)
regress() {
	rg_as_postgres "cd '$RG_WORK' && PG_TEST_TIMEOUT_DEFAULT=15 timeout 600 make -s installcheck RG_TEMP_INSTANCE=1" || {
		cat "$RG_WORK/regression.diffs" "$RG_WORK/output_iso/regression.diffs" 2>/dev/null | head -300
		return 1
	}
}
suite "make installcheck: pg_regress (sql/) and isolation (specs/)" regress

for t in test/scenario/*.sh; do
	[ -e "$t" ] || continue
	suite "$(basename "$t")" sh "$t"
done

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
