#!/bin/sh
# The demo, from a fresh Debian bookworm machine, as root:
#     test/demo.sh
# Installs PostgreSQL 15 and the build dependencies if missing, builds and
# installs rollguard, starts a throwaway cluster (as the postgres user, on a
# Unix socket in a temporary directory), plays the mirror scenario and shows
# what a DBA sees.  The cluster is removed at the end.
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh

rg_need_root
rg_install_deps
rg_build_install
dir=$(mktemp -d /tmp/rollguard-demo.XXXXXX)
chown postgres "$dir"
trap 'rg_stop_cluster "$dir"; rm -rf "$dir"' EXIT
rg_log "starting a throwaway cluster with shared_preload_libraries = 'rollguard'"
rg_start_cluster "$dir"
cp test/demo.sql "$dir/demo.sql"
chown postgres "$dir/demo.sql"
rg_log "the mirror scenario"
rg_as_postgres "psql -h '$dir' -p 5432 -X -q -e -f '$dir/demo.sql' 2>&1"
