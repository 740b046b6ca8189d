#!/bin/sh
# rollguard with Sequelize 6 and contrib/node (the npm package "rollguard",
# installed from this checkout): npm's sequelize, umzug and pg, pinned in
# test/clients/sequelize/package-lock.json.  The mirror scenario (original,
# mirror-2, mirror-3; the original migrates first): migrations written with
# queryInterface (removeColumn, renameColumn, changeColumn to allowNull:
# false, changeColumn without the defaultValue, dropTable, renameTable, two
# statements in sequelize.transaction()) run by umzug into SequelizeMeta are
# refused (55006, naming the deployments; SequelizeMeta and the schema
# unchanged) while a deployment runs version 41, and go through once every
# one runs 42; two statements outside a transaction (umzug's default) are
# left half applied.  Manifests come from the models
# (rollguard.manifestFromSequelize, checked against the INSERTs Sequelize
# sends); deploy steps go through the package and its CLI, rollguard-node.
# See test/clients/sequelize/test_sequelize.js.
#     sh test/scenario/sequelize.sh [SUBSTRING ...]   # only the matching scenarios
# As root, with rollguard installed.  Installs Debian's nodejs and npm if
# node is missing, and the npm packages with npm ci into
# test/clients/sequelize/node_modules (skipped when that already matches the
# lock file, so a second run is offline).
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh
rg_need_root
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}
SEQ_DIR=test/clients/sequelize

rg_npm_ci sequelize "$SEQ_DIR" 16 "umzug 3" || exit 1

dir=$(mktemp -d /tmp/rollguard-sequelize.XXXXXX)
chown postgres "$dir"
trap 'rg_stop_cluster "$dir"; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP
rg_start_cluster "$dir"
v() { node -p 'require("./'"$SEQ_DIR"'/node_modules/'"$1"'/package.json").version'; }
echo "# sequelize $(v sequelize), umzug $(v umzug), pg $(v pg), rollguard (contrib/node) $(v rollguard), node $(node --version)"
timeout 120 node "$SEQ_DIR/test_sequelize.js" "$@"
