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

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "# installing nodejs npm"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; } ||
		true
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "not ok - knex: node and npm missing, and Debian's nodejs npm could not be installed"
	exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 16 ]; then
	echo "not ok - knex: knex 3 needs node 16 or later, this is $(node --version)"
	exit 1
fi

# npm ci only when node_modules does not match the lock file (and node).
stamp="$KNEX_DIR/node_modules/.rollguard-installed"
want="$(sha256sum "$KNEX_DIR/package-lock.json" | cut -d' ' -f1) node $(node --version)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
	echo "# npm ci in $KNEX_DIR (npm $(npm --version), node $(node --version))"
	if ! (cd "$KNEX_DIR" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null); then
		echo "not ok - knex: npm ci failed"
		exit 1
	fi
	printf '%s\n' "$want" >"$stamp"
fi

dir=$(mktemp -d /tmp/rollguard-knex.XXXXXX)
chown postgres "$dir"
trap 'rg_stop_cluster "$dir"; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP
rg_start_cluster "$dir"
echo "# knex $(node -p 'require("./'"$KNEX_DIR"'/node_modules/knex/package.json").version'), pg $(node -p 'require("./'"$KNEX_DIR"'/node_modules/pg/package.json").version'), node $(node --version)"
timeout 120 node "$KNEX_DIR/test_knex.js" "$@"
