#!/bin/sh
# Developer helper: run some pg_regress suites on a throwaway cluster.
#     test/regress.sh                 # every suite in the Makefile
#     test/regress.sh manifest deploy # just these
# Needs rollguard built and installed (make && make install).  Results land
# in ./results/NAME.out; differences from expected/ are printed.  Several
# runs may go on at once.
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh
rg_need_root
RG_BINDIR=$(pg_config --bindir)
rg_workdir
trap 'rm -rf "$RG_WORK"' EXIT
regress=""
[ $# -gt 0 ] && regress="REGRESS='$*'"
status=0
rg_as_postgres "cd '$RG_WORK' && make -s installcheck RG_TEMP_INSTANCE=1 $regress" || status=$?
mkdir -p results
cp "$RG_WORK"/results/*.out results/ 2>/dev/null || true
cat "$RG_WORK/regression.diffs" 2>/dev/null || true
exit $status
