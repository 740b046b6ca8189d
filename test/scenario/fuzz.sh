#!/bin/sh
# Bad input, at scale: test/fuzz/battery.py sends some 1,300 malformed or
# hostile inputs (NULLs everywhere, empty and 64 KB labels, control
# characters, odd Unicode, quotes and SQL injection in every name, deeply
# nested and 10 MB manifests, hostile migration scripts, inputs of hundreds
# of MB) through every API function, and 320 defaults and CHECK constraints
# generated at random that are NULL (or reject NULL) or not, each judged
# against what the database evaluates, on a throwaway cluster that preloads
# rollguard.  Each input must get a clear error with a proper SQLSTATE
# (never XX000) or the correct result; no backend may crash; a failing call
# must leave the registry exactly as it was.  Ends with
#     battery: N inputs, 0 crashes, 0 internal errors, 0 partial writes, 0 wrong outcomes, 0 timeouts
# and exits non-zero on any problem.  About 60 s (the inputs of hundreds of
# MB, ~15 s of it, only run with 6 GB of memory or more).
#     sh test/scenario/fuzz.sh [--only SUBSTRING] [--verbose]
# As root, with rollguard installed.
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh
rg_need_root
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}
RG_PYTHON=${RG_PYTHON:-/usr/bin/python3}

if ! "$RG_PYTHON" -c "import psycopg2" 2>/dev/null; then
	echo "# installing python3-psycopg2"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends python3 python3-psycopg2 >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-psycopg2 >/dev/null; }
fi

dir=$(mktemp -d /tmp/rollguard-fuzz.XXXXXX)
chown postgres "$dir"
cleanup() {
	rg_stop_cluster "$dir"
	rm -rf "$dir"
}
trap cleanup EXIT
rg_start_cluster "$dir"

status=0
"$RG_PYTHON" test/fuzz/battery.py --host "$dir" --port 5432 --user postgres \
	--server-log "$dir/server.log" "$@" || status=$?

# the postmaster is still up
if ! rg_as_postgres "$RG_BINDIR/pg_isready -q -h '$dir' -p 5432"; then
	echo "CRASHES: the postmaster is not answering after the battery"
	status=1
fi
exit $status
