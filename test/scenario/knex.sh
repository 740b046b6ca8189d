#!/bin/sh
# rollguard with knex 3 (npm's knex and pg, pinned in
# test/clients/knex/package-lock.json): migrations written with knex's schema
# builder and run by knex.migrate.latest() in its default transaction.
# .alter() widenings that keep NOT NULL and the default go through (knex's
# DROP DEFAULT / DROP NOT NULL / TYPE / SET DEFAULT / SET NOT NULL break
# nothing as a whole); dropColumn, renameColumn, dropNullable and an .alter()
# that leaves a column tightened are refused (55006, naming the deployments,
# schema and knex_migrations unchanged) while a deployment runs version 41,
# and go through once every deployment runs 42.  Prints the SQL knex sent.
# See test/clients/knex/test_knex.js.
#     sh test/scenario/knex.sh [SUBSTRING ...]   # only the matching scenarios
# As root, with rollguard installed.  Installs Debian's nodejs and npm if
# node is missing, and the npm packages with npm ci into
# test/clients/knex/node_modules (skipped when that already matches the
# lock file, so a second run is offline).
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh
rg_need_root
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}
KNEX_DIR=test/clients/knex

rg_npm_ci knex "$KNEX_DIR" 16 "knex 3" || exit 1

dir=$(mktemp -d /tmp/rollguard-knex.XXXXXX)
chown postgres "$dir"
trap 'rg_stop_cluster "$dir"; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP
rg_start_cluster "$dir"
echo "# knex $(node -p 'require("./'"$KNEX_DIR"'/node_modules/knex/package.json").version'), pg $(node -p 'require("./'"$KNEX_DIR"'/node_modules/pg/package.json").version'), node $(node --version)"
timeout 120 node "$KNEX_DIR/test_knex.js" "$@"
