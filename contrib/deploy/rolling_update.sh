#!/bin/sh
# rolling_update.sh -- a rolling update of one deployment, guarded by rollguard.
#
# Old and new instances serve side by side for a while.  rollguard counts
# both versions as live from before the first new instance starts until the
# last old one has stopped:
#
#     DEPLOYMENT=web VERSION=43 \
#     START_CMD='./start-instances 43' STOP_OLD_CMD='./stop-instances 42' \
#         contrib/deploy/rolling_update.sh
#
# 1. begin_rollout (registering VERSION with its manifest): both versions live.
# 2. MIGRATE_CMD, the expand migration: refused if it would break either one.
# 3. START_CMD starts the new instances.
# 4. STOP_OLD_CMD stops the old ones.
# 5. finish_rollout: only VERSION remains.
#
# If step 2 or 3 fails, or the script is interrupted before step 4,
# abort_rollout: the old version alone is live again, and the exit status is
# 1.  (START_CMD must leave no new instance running when it fails.)  If step 4
# fails, old instances may still be serving: the rollout stays open -- both
# versions keep counting -- and the exit status is 1; once you know what runs,
# finish or abort it:
#     DEPLOYMENT=web VERSION=43 contrib/deploy/rollguard_step.sh finish   # or abort
#
# Environment:
#   VERSION        the label of the new build                        (required)
#   DEPLOYMENT     rollguard's name for the deployment (default: web)
#   START_CMD      starts the new instances, a shell command         (required)
#   STOP_OLD_CMD   stops the old instances, a shell command          (required)
#   MIGRATE_CMD    the expand migration, a shell command; ":" for none
#                  (default with ROLLGUARD_VIA=django: $MANAGE migrate --noinput;
#                  required with psql)
#   MANAGE         how to run manage.py (default: python3 manage.py)
#   DATABASE_URL, ROLLGUARD_VIA, MANIFEST, ROLLGUARD_KEY   see rollguard_step.sh
#
# The migration runs with ROLLGUARD_OBSERVE=off in its environment (see
# divio_mirror.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

: "${VERSION:?VERSION must name the new build}"
: "${START_CMD:?START_CMD must start the new instances}"
: "${STOP_OLD_CMD:?STOP_OLD_CMD must stop the old instances}"
DEPLOYMENT=${DEPLOYMENT:-web}
MANAGE=${MANAGE:-python3 manage.py}
if [ "${ROLLGUARD_VIA:-django}" = django ]; then
	MIGRATE_CMD=${MIGRATE_CMD:-$MANAGE migrate --noinput}
fi
: "${MIGRATE_CMD:?MIGRATE_CMD must run the migration (\":\" for none)}"
export VERSION DEPLOYMENT MANAGE

say() { printf 'rolling_update.sh: %s\n' "$*"; }

# Called off: the old version alone is live again.
abort() {
	trap - INT TERM HUP
	say "$1: aborting the rollout of version $VERSION to $DEPLOYMENT" >&2
	sh "$here/rollguard_step.sh" abort || say "abort_rollout failed too: check rollguard.deployments" >&2
	exit 1
}

say "rolling out version $VERSION to $DEPLOYMENT"
sh "$here/rollguard_step.sh" begin

trap 'abort "interrupted"' INT TERM HUP
say "migrate (both versions live)"
ROLLGUARD_OBSERVE=off sh -c "$MIGRATE_CMD" || abort "the migration failed"
say "starting the new instances"
sh -c "$START_CMD" || abort "the new instances did not start"

trap - INT TERM HUP
say "stopping the old instances"
if ! sh -c "$STOP_OLD_CMD"; then
	say "stopping the old instances failed: the rollout stays open, both versions count as live." >&2
	say "Once you know what runs: DEPLOYMENT=$DEPLOYMENT VERSION=$VERSION $here/rollguard_step.sh finish (or abort)" >&2
	exit 1
fi
sh "$here/rollguard_step.sh" finish
